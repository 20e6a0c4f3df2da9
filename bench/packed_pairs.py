"""Preference pairs packed into one row (prompt once) against TRL's two padded sequences per pair.

Why it matters: the preference model and DPO were 600 of the 64-prompt run's ~1,050 seconds per constitution
(docs/training.md), and their cost is tokens through a 135M model on one thread. The human helpfulness pairs
open with whole conversations, so two sequences per pair compute each prompt twice. This measures, in one
process and on the same batches, one optimiser step's forward + backward of

- the preference model (LoRA, sequence classification): two sequences per pair vs one packed row;
- soft-label DPO (LoRA policy, reference = adapters off): the same, policy and reference passes;

and checks that both layouts give the same losses. The pairs are the 64 + 16 profile's mix: 43 human
helpfulness pairs (the run's seeded sample) and 64 red-team prompts whose two 48-token replies are cut from
held-out harmless replies (the run's own are sampled by its SL model; the shapes are what matter here).

    python bench/packed_pairs.py [--batches 6] [--batch-size 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def profile_pairs(tokenizer: Any) -> list[dict[str, Any]]:
    """The 64 AI-shaped + 43 human pairs of the 64 + 16 profile (see the module docstring)."""
    from ccai.formats.hf import assistant, user
    from ccai.training.config import TrainingConfig
    from ccai.training.data import split_prompts
    from ccai.training.human_prefs import heldout_harmless_pairs, helpful_pairs, sample
    from ccai.training.preference import helpful_count

    cfg = TrainingConfig(data={"red_team_prompts": 64, "helpful_prompts": 16})
    split = split_prompts(cfg.data, 0)
    harmless = heldout_harmless_pairs(cfg.data)
    train, _, _ = helpful_pairs(cfg.data)

    def cut(text: str) -> str:
        return tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"][:48])

    rows = [
        {
            "prompt": user(p.text),
            "chosen": assistant(cut(harmless[2 * k].chosen)),
            "rejected": assistant(cut(harmless[2 * k + 1].rejected)),
        }
        for k, p in enumerate(split.red_team[:64])
    ]
    wanted = helpful_count(len(rows), cfg.rl.helpful_fraction)
    rows += [p.row("human_helpful") for p in sample(train, wanted, 0, "rl_helpful")]
    return rows


def tokenised(tokenizer: Any, row: dict[str, Any]) -> dict[str, list[int]]:
    def ids(messages: list[dict[str, str]], prompt: bool = False) -> list[int]:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    prompt = ids(row["prompt"], prompt=True)
    out = {"prompt_ids": prompt}
    for side in ("chosen", "rejected"):
        full = ids(row["prompt"] + row[side])
        if full[: len(prompt)] != prompt:
            raise ValueError("chat template: the prompt is not a prefix of the conversation")
        out[f"{side}_ids"] = full[len(prompt) :]
    return out


def separate_batch(rows: list[dict[str, list[int]]], pad: int) -> dict[str, Any]:
    """TRL's layout: chosen sequences then rejected ones, right-padded to the longest."""
    import torch

    seqs = [r["prompt_ids"] + r["chosen_ids"] for r in rows] + [
        r["prompt_ids"] + r["rejected_ids"] for r in rows
    ]
    masks = [
        [0] * len(r["prompt_ids"]) + [1] * len(r[k]) for k in ("chosen_ids", "rejected_ids") for r in rows
    ]
    width = max(map(len, seqs))
    return {
        "input_ids": torch.tensor([s + [pad] * (width - len(s)) for s in seqs]),
        "attention_mask": torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs]),
        "completion": torch.tensor([m + [0] * (width - len(m)) for m in masks]),
        "lengths": torch.tensor([len(s) for s in seqs]),
    }


def separate_logps(model: Any, batch: dict[str, Any]) -> Any:
    import torch

    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).logits
    logits = logits[:, :-1].float()
    targets, mask = batch["input_ids"][:, 1:], batch["completion"][:, 1:]
    logps = logits.gather(-1, targets[..., None]).squeeze(-1) - logits.logsumexp(-1)
    return torch.where(mask.bool(), logps, torch.zeros_like(logps)).sum(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from ccai.models.prepare import load_causal_lm, load_tokenizer, resolve_model
    from ccai.training.preference import (
        collate_packed,
        pack_pair,
        packed_pair_logps,
        packed_pair_scores,
        soft_bce,
    )

    torch.set_num_threads(args.threads)
    base = resolve_model(args.model)
    tokenizer = load_tokenizer(base)
    pad = tokenizer.pad_token_id
    rows = [tokenised(tokenizer, r) for r in profile_pairs(tokenizer)]
    sizes = {
        "pairs": len(rows),
        "tokens_separate": sum(
            2 * len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in rows
        ),
        "tokens_packed": sum(
            len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in rows
        ),
    }
    # batches as the trainers form them: rows grouped by length, then a seeded sample of those batches
    order = sorted(range(len(rows)), key=lambda k: len(rows[k]["prompt_ids"]) + len(rows[k]["chosen_ids"]))
    groups = [order[k : k + args.batch_size] for k in range(0, len(order), args.batch_size)]
    chosen_groups = random.Random(0).sample(groups, min(args.batches, len(groups)))
    target = torch.full((args.batch_size,), 0.6)

    def packed_batch(group: list[int]) -> dict[str, Any]:
        items = []
        for k in group:
            r = rows[k]
            p = [0] * len(r["prompt_ids"])
            items.append(
                pack_pair(
                    r["prompt_ids"] + r["chosen_ids"],
                    r["prompt_ids"] + r["rejected_ids"],
                    p + [1] * len(r["chosen_ids"]),
                    p + [1] * len(r["rejected_ids"]),
                )
            )
        return collate_packed(items, pad)

    lora = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}
    results: dict[str, Any] = {**sizes, "batches": len(chosen_groups), "threads": args.threads}

    # preference model
    torch.manual_seed(0)
    pm = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1, dtype=torch.float32)
    pm.config.pad_token_id = pad
    pm = get_peft_model(pm, LoraConfig(task_type="SEQ_CLS", **lora))
    pm.train()
    seconds = {"separate": 0.0, "packed": 0.0}
    max_diff = 0.0
    for group in chosen_groups:
        t = target[: len(group)]
        start = time.process_time()
        sep = separate_batch([rows[k] for k in group], pad)
        scores = pm(input_ids=sep["input_ids"], attention_mask=sep["attention_mask"], use_cache=False).logits
        c, r = scores.squeeze(-1).chunk(2)
        loss_sep = soft_bce(c - r, t)
        loss_sep.backward()
        seconds["separate"] += time.process_time() - start
        pm.zero_grad()
        start = time.process_time()
        c, r, _ = packed_pair_scores(pm, pm, packed_batch(group))
        loss_packed = soft_bce(c - r, t)
        loss_packed.backward()
        seconds["packed"] += time.process_time() - start
        pm.zero_grad()
        max_diff = max(max_diff, abs(float(loss_sep) - float(loss_packed)))
    results["pm"] = {**{k: round(v, 1) for k, v in seconds.items()}, "max_loss_diff": max_diff}
    del pm

    # DPO: LoRA policy, the reference is the same model with its adapters off
    torch.manual_seed(0)
    policy = get_peft_model(load_causal_lm(base), LoraConfig(task_type="CAUSAL_LM", **lora))
    with torch.no_grad():  # move the adapters off zero so the margin is not 0 by construction
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.add_(torch.randn_like(param) * 0.01)
    policy.train()
    seconds = {"separate": 0.0, "packed": 0.0}
    max_diff = 0.0
    for group in chosen_groups:
        t = target[: len(group)]
        losses = {}
        for layout, logps in (("separate", separate_logps), ("packed", packed_pair_logps)):
            start = time.process_time()
            batch = (
                separate_batch([rows[k] for k in group], pad) if layout == "separate" else packed_batch(group)
            )
            with torch.no_grad(), policy.disable_adapter():
                reference = logps(policy, batch)
            ratios = logps(policy, batch) - reference
            c, r = ratios.chunk(2)
            loss = soft_bce(0.1 * (c - r), t)
            loss.backward()
            seconds[layout] += time.process_time() - start
            policy.zero_grad()
            losses[layout] = float(loss)
        max_diff = max(max_diff, abs(losses["separate"] - losses["packed"]))
    results["dpo"] = {**{k: round(v, 1) for k, v in seconds.items()}, "max_loss_diff": max_diff}
    for part in ("pm", "dpo"):
        results[part]["ratio"] = round(results[part]["separate"] / results[part]["packed"], 2)
    results["token_ratio"] = round(sizes["tokens_separate"] / sizes["tokens_packed"], 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
