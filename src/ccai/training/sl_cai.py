"""SL-CAI: initial response -> critique -> revision (N rounds) from a constitution, then fine-tuning.

For every red-team prompt the model answers; then, for each round, a principle is drawn at random (seeded by
run seed, prompt id and round, so the draw does not depend on batching), the model critiques its latest
answer with that principle's critique request and rewrites it with the matching revision request. The
project's own few-shot demonstrations (``prompts/few_shot.yaml``) are prepended to the critique and revision
calls. Each round restarts from the latest revision instead of growing one long context (the paper appends;
on a CPU the quadratic context cost matters more). Helpful prompts get the model's own answer, mixed into SFT
as the paper mixed in helpful responses. SFT uses prompt-completion rows, so only the answer is trained on.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import yaml

from ccai.formats.hf import assistant, user
from ccai.models.backends import generate_with_info
from ccai.training.config import OptimConfig, SLConfig
from ccai.training.data import Prompt
from ccai.training.quality import check_revision, check_text, count, settle

FEW_SHOT_PATH = Path(__file__).with_name("prompts") / "few_shot.yaml"
#: Training rows whose loss is measured before and after fine-tuning (a fit check; each pass over them
#: costs about as much as a third of the training epoch on a CPU, so it stays small).
PROBE_ROWS = 32
_LABEL = re.compile(r"^\s*(critique|revision|revised response|rewritten answer|answer)\s*:\s*", re.IGNORECASE)


def load_demos(path: Path = FEW_SHOT_PATH) -> list[dict[str, str]]:
    demos = yaml.safe_load(path.read_text())["demos"]
    keys = {"prompt", "response", "critique_request", "critique", "revision_request", "revision"}
    for index, demo in enumerate(demos):
        if set(demo) != keys:
            raise ValueError(f"{path}: demos[{index}] must have exactly the keys {sorted(keys)}")
    return demos


def demo_messages(demos: list[dict[str, str]], n: int) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for demo in demos[:n]:
        messages += [
            *user(demo["prompt"]),
            *assistant(demo["response"]),
            *user(demo["critique_request"]),
            *assistant(demo["critique"]),
            *user(demo["revision_request"]),
            *assistant(demo["revision"]),
        ]
    return messages


def principle_weights(constitution: Any) -> list[float]:
    """Each principle's consensus weight (``weight`` attribute; missing means 1), checked."""
    weights = []
    for p in constitution.principles:
        w = getattr(p, "weight", None)
        w = 1.0 if w is None else float(w)
        if not w >= 0 or w == float("inf"):
            raise ValueError(f"constitution {constitution.name!r}: principle {p.id!r} has weight {w!r}")
        weights.append(w)
    if not any(weights):
        raise ValueError(f"constitution {constitution.name!r}: every principle has weight 0")
    return weights


def draw_principle(constitution: Any, seed: int, prompt_id: str, purpose: str, weighted: bool = False) -> Any:
    """A principle drawn reproducibly, independent of batching and chunking: uniformly (the CAI paper), or
    with ``weighted`` in proportion to each principle's consensus weight."""
    rng = random.Random(f"{seed}:{prompt_id}:{purpose}")
    if not weighted:
        return rng.choice(constitution.principles)
    return rng.choices(constitution.principles, weights=principle_weights(constitution))[0]


def clean(text: str) -> str:
    """Drop a leading 'Revision:'-style label the model may echo from the demonstrations."""
    return _LABEL.sub("", text, count=1).strip()


def generate_chunk(
    backend: Any,
    prompts: list[Prompt],
    constitution: Any,
    config: SLConfig,
    seed: int,
    chunk: int,
    weighted: bool = False,
) -> list[dict[str, Any]]:
    """All SL-CAI rows for one chunk of prompts (red-team rows critiqued and revised; helpful rows not).

    Every row is returned; rows a quality gate rejects carry the reason in ``dropped`` and are not trained
    on. A revision that fails a gate is not accepted (the next round revises the last accepted answer);
    a red-team row without any accepted revision is dropped, since its initial answer is no CAI target.
    """
    gen = config.generation
    quality = config.quality
    critique_tokens = config.critique_max_new_tokens or gen.max_new_tokens
    sampling = {"temperature": gen.temperature, "top_p": gen.top_p}
    call_seed = seed * 1_000_003 + chunk * 1_009
    initial = generate_with_info(
        backend,
        [user(p.text) for p in prompts],
        max_new_tokens=gen.max_new_tokens,
        seed=call_seed,
        **sampling,
    )
    demos = demo_messages(load_demos(), config.few_shot)
    red = [i for i, p in enumerate(prompts) if p.source == "red_team"]
    current = {i: initial[i].text for i in red}
    accepted = dict.fromkeys(red, False)
    trimmed = dict.fromkeys(red, False)  # whether the accepted revision was trimmed to a sentence end
    trail: dict[int, dict[str, list[str]]] = {
        i: {"principles": [], "critiques": [], "revisions": [], "checks": []} for i in red
    }
    for round_ in range(config.revisions):
        principles = {
            i: draw_principle(constitution, seed, prompts[i].id, f"sl{round_}", weighted) for i in red
        }
        base = {i: [*demos, *user(prompts[i].text), *assistant(current[i])] for i in red}
        critiques = generate_with_info(
            backend,
            [[*base[i], *user(principles[i].critique_request)] for i in red],
            max_new_tokens=critique_tokens,
            seed=call_seed + 2 * round_ + 1,
            **sampling,
        )
        critiques_text = [clean(c.text) for c in critiques]
        revisions = generate_with_info(
            backend,
            [
                [
                    *base[i],
                    *user(principles[i].critique_request),
                    *assistant(c),
                    *user(principles[i].revision_request),
                ]
                for i, c in zip(red, critiques_text, strict=True)
            ],
            max_new_tokens=gen.max_new_tokens,
            seed=call_seed + 2 * round_ + 2,
            **sampling,
        )
        for i, c, r in zip(red, critiques_text, revisions, strict=True):
            revision, truncated, cut = settle(clean(r.text), r.truncated, quality)
            principle = principles[i]
            problem = check_revision(
                revision,
                truncated,
                critique=c,
                requests=(prompts[i].text, principle.critique_request, principle.revision_request),
                config=quality,
            )
            trail[i]["principles"].append(principle.id)
            trail[i]["critiques"].append(c)
            trail[i]["revisions"].append(revision)
            trail[i]["checks"].append(problem or "")
            if problem is None:
                current[i] = revision
                accepted[i] = True
                trimmed[i] = cut
    rows = []
    for i, prompt in enumerate(prompts):
        if i in accepted:
            final, cut = current[i], trimmed[i]
            dropped = None if accepted[i] else "no_accepted_revision"
        else:
            final, truncated, cut = settle(initial[i].text, initial[i].truncated, quality)
            dropped = check_text(final, truncated, quality)
        info = trail.get(i, {"principles": [], "critiques": [], "revisions": [], "checks": []})
        rows.append(
            {
                "id": prompt.id,
                "source": prompt.source,
                "prompt": user(prompt.text),
                "completion": assistant(final),
                "principle_ids": info["principles"],
                "initial_response": initial[i].text,
                "critiques": info["critiques"],
                "revisions": info["revisions"],
                "revision_checks": info["checks"],
                "dropped": dropped,
                "trimmed": cut,
                "constitution_hash": constitution.content_hash,
            }
        )
    return rows


def quality_counts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the gates did, for state.json, the run summary and the model card."""
    checks = [c for r in rows for c in r.get("revision_checks", [])]
    return {
        "sft_rows": sum(r.get("dropped") is None for r in rows),
        "sft_rows_trimmed": sum(r.get("dropped") is None and bool(r.get("trimmed")) for r in rows),
        "rows_dropped": count(r.get("dropped") for r in rows),
        "revisions_checked": len(checks),
        "revisions_rejected": count(checks),
    }


def train_sft(
    model_dir: Path,
    rows: list[dict[str, Any]],
    optim: OptimConfig,
    out_dir: Path,
    *,
    seed: int,
    bf16: bool,
    device: str,
    callbacks: list[Any],
    measure_loss: bool,
) -> tuple[Any, dict]:
    """LoRA (default) or full SFT on prompt-completion rows; resumes from the last checkpoint."""
    from trl import SFTConfig, SFTTrainer

    from ccai.formats.hf import to_dataset
    from ccai.models.prepare import load_causal_lm, load_tokenizer
    from ccai.training.runs import latest_checkpoint, lora_config, quiet, trainer_kwargs

    rows = [r for r in rows if r.get("dropped") is None]
    if not rows:
        raise ValueError(
            "every SL-CAI row was dropped by the quality gates (see state.json sl_data.rows_dropped): "
            "raise sl.generation.max_new_tokens, or relax sl.quality.*"
        )
    dataset = to_dataset(rows, ["prompt", "completion"])
    probe = dataset.select(range(min(PROBE_ROWS, len(dataset))))
    tokenizer = load_tokenizer(model_dir)
    args = SFTConfig(
        **trainer_kwargs(optim, out_dir, seed=seed, bf16=bf16, device=device, group_by_length=True),
        max_length=optim.max_length,
        completion_only_loss=True,
        packing=False,
        eval_strategy="no",
        dataset_num_proc=None,
    )
    trainer = quiet(
        SFTTrainer(
            model=load_causal_lm(model_dir),
            args=args,
            train_dataset=dataset,
            eval_dataset=probe if measure_loss else None,
            processing_class=tokenizer,
            peft_config=lora_config(optim),
            callbacks=callbacks,
        )
    )
    checkpoint = latest_checkpoint(out_dir)
    results: dict[str, Any] = {"rows": len(dataset), "resumed_from": checkpoint.name if checkpoint else None}
    if measure_loss:  # also on resume: the model is still the untrained one here
        results["loss_before"] = trainer.evaluate()["eval_loss"]
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    results["train_loss"] = output.training_loss
    results["steps"] = trainer.state.global_step
    if measure_loss:
        results["loss_after"] = trainer.evaluate()["eval_loss"]
    return trainer, results
