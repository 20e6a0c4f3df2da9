"""RL-CAI: response pairs, AI-labelled preferences, a soft-label preference model, and policy optimisation.

How the soft labels enter training (TRL 1.16 has no per-pair soft target, so two thin subclasses add one):

- Preference model (:class:`SoftLabelRewardTrainer`): with reward difference d = r(chosen) - r(rejected) and
  soft label p = P(chosen better), the loss is the cross-entropy -[p log sigma(d) + (1 - p) log sigma(-d)].
  A pair labelled 0.5 then pulls the two rewards together instead of pretending one is better.
- DPO (:class:`SoftDPOTrainer`, ``rl.soft_labels: soft``, the default): the same cross-entropy on the DPO
  implicit reward margin d = beta * [(log pi(c) - log ref(c)) - (log pi(r) - log ref(r))]. With p = 1 this is
  standard DPO; a pair at 0.5 has its optimum at d = 0 (no preference learned). This equals DPO with
  per-example label smoothing 1 - p ("conservative DPO").
- ``rl.soft_labels: binarise``: pairs with |p - 0.5| < ``rl.min_margin`` are dropped and the rest train with
  hard labels (p = 1 for the preferred response).
- Online (``rl.method: grpo`` / ``rloo``): TRL's trainer samples from the SL model and the trained preference
  model scores each completion as the reward.

Both trainers see a pair as **one packed row** (:func:`pack_pair`): the shared prompt once, then the chosen
reply, then the rejected one, with an attention mask that keeps the two replies from seeing each other and
position ids that restart after the prompt. Every token gets the hidden states it gets in its own sequence, so
the losses are those of two separate sequences, while the prompt is computed once instead of twice: on the
64 + 16 CPU profile's 107 pairs that is 16,730 tokens through the model instead of 24,392 (human helpfulness
prompts are whole conversations), and on a CPU the work is the tokens (docs/training.md, "Measured").
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ccai.formats.hf import assistant, user
from ccai.training.config import RLConfig
from ccai.training.data import Prompt
from ccai.training.sl_cai import PROBE_ROWS

#: Preference rows the preference model trains on (revision-over-initial pairs are DPO-only, as in the
#: HF recipe: they say what a revision is, not what a constitution prefers between two samples).
PM_SOURCES = ("ai_harmless", "human_helpful")


def sample_pairs(backend: Any, prompts: list[Prompt], config: RLConfig, seed: int, chunk: int) -> list[dict]:
    """Two sampled responses per prompt from the SL model (one generate call over the doubled list)."""
    gen = config.generation
    replies = backend.generate(
        [user(p.text) for p in prompts] * 2,
        max_new_tokens=gen.max_new_tokens,
        temperature=gen.temperature,
        top_p=gen.top_p,
        seed=seed * 1_000_003 + 500_009 + chunk * 1_009,
    )
    n = len(prompts)
    return [
        {"id": p.id, "prompt": user(p.text), "response_a": replies[i], "response_b": replies[n + i]}
        for i, p in enumerate(prompts)
    ]


def label_pairs(labeller: Any, pairs: list[dict], constitution_hash: str) -> list[dict[str, Any]]:
    """Preference rows (ccai.formats.hf ``preference``) for pairs whose two responses are non-empty."""
    usable = [p for p in pairs if p["response_a"].strip() and p["response_b"].strip()]
    judgements = labeller.judge(
        [(p["id"], p["prompt"][-1]["content"], p["response_a"], p["response_b"]) for p in usable]
    )
    rows = []
    for pair, j in zip(usable, judgements, strict=True):
        a, b = pair["response_a"], pair["response_b"]
        a_wins = j.p_a >= 0.5
        rows.append(
            {
                "id": pair["id"],
                "prompt": pair["prompt"],
                "chosen": assistant(a if a_wins else b),
                "rejected": assistant(b if a_wins else a),
                "soft_label": j.p_a if a_wins else 1.0 - j.p_a,
                "principle_id": j.principle_id,
                "p_a": j.p_a,
                "p_a_orders": j.p_a_orders,
                "response_a": a,
                "response_b": b,
                "option_mass": j.option_mass,
                "reasoning": j.reasoning,
                "constitution_hash": constitution_hash,
                "source": "ai_harmless",
            }
        )
    return rows


def revision_pairs(sl_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """HF constitutional-ai recipe pairs: the final (accepted) revision preferred over the initial answer,
    for red-team rows the quality gates kept; rows whose revision equals the initial answer teach nothing."""
    out = []
    for row in sl_rows:
        final, initial = row["completion"][0]["content"], row.get("initial_response", "")
        if row["source"] != "red_team" or row.get("dropped") is not None or not initial.strip():
            continue
        if final.strip() == initial.strip():
            continue
        out.append(
            {
                "id": f"{row['id']}:revision",
                "prompt": row["prompt"],
                "chosen": row["completion"],
                "rejected": assistant(initial),
                "soft_label": 1.0,
                "p_a": 1.0,
                "response_a": final,
                "response_b": initial,
                "constitution_hash": row.get("constitution_hash", ""),
                "source": "revision",
            }
        )
    return out


def helpful_count(ai_pairs: int, fraction: float) -> int:
    """How many human helpfulness pairs make them ``fraction`` of the PM's pairs next to ``ai_pairs``."""
    return round(ai_pairs * fraction / (1 - fraction)) if fraction > 0 else 0


def training_targets(rows: list[dict[str, Any]], config: RLConfig) -> list[dict[str, Any]]:
    """The rows and soft labels the trainers see, after the binarise/margin rule."""
    if config.soft_labels == "soft":
        return [{**r, "target": r["soft_label"]} for r in rows]
    return [{**r, "target": 1.0} for r in rows if r["soft_label"] - 0.5 >= config.min_margin]


def pair_lengths(tokenizer: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with ``length``: tokens of its packed row (the prompt once, then both replies; see
    :func:`pack_pair`), which is what a batch pads to; the trainers group batches by it."""

    def tokens(messages: list[dict[str, str]], prompt: bool = False) -> int:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return [
        {
            **r,
            "length": tokens(r["prompt"] + r["chosen"])
            + tokens(r["prompt"] + r["rejected"])
            - tokens(r["prompt"], prompt=True),
        }
        for r in rows
    ]


def soft_bce(margin: Any, target: Any) -> Any:
    """-[p log sigma(d) + (1 - p) log sigma(-d)], averaged: the loss both trainers share."""
    import torch.nn.functional as F

    return -(target * F.logsigmoid(margin) + (1 - target) * F.logsigmoid(-margin)).mean()


#: Segment ids of a packed pair row: padding, shared prefix, first (chosen) and second (rejected) reply.
PAD, SHARED, FIRST, SECOND = 0, 1, 2, 3


def pack_pair(
    first: list[int],
    second: list[int],
    first_mask: list[int] | None = None,
    second_mask: list[int] | None = None,
) -> dict[str, list[int]]:
    """Two token sequences as one row: their longest common prefix once, then the rest of each.

    Returns ``ids``, ``segments`` (:data:`SHARED`/:data:`FIRST`/:data:`SECOND`), ``positions`` (each token's
    position in its own sequence), ``predictor`` (the row index whose logits predict the token: the previous
    token of the same sequence, -1 for a sequence's first token), ``completion`` (the masks, 0 when not given)
    and ``ends`` (the row index of each sequence's last token). The prefix is capped so that each sequence
    keeps at least one token of its own; sequences that share nothing are simply placed side by side.
    """
    if not first or not second:
        raise ValueError("pack_pair: both sequences need at least one token")
    first_mask = first_mask or [0] * len(first)
    second_mask = second_mask or [0] * len(second)
    shared = 0
    limit = min(len(first), len(second)) - 1
    while shared < limit and first[shared] == second[shared] and first_mask[shared] == second_mask[shared]:
        shared += 1
    own_first, own_second = len(first) - shared, len(second) - shared
    start_second = shared + own_first
    return {
        "ids": first + second[shared:],
        "segments": [SHARED] * shared + [FIRST] * own_first + [SECOND] * own_second,
        "positions": list(range(len(first))) + list(range(shared, len(second))),
        "predictor": list(range(-1, len(first) - 1))
        + [shared - 1]
        + list(range(start_second, start_second + own_second - 1)),
        "completion": first_mask + second_mask[shared:],
        "ends": [len(first) - 1, start_second + own_second - 1],
    }


def collate_packed(rows: list[dict[str, list[int]]], pad_token_id: int) -> dict[str, Any]:
    """Right-padded tensors of :func:`pack_pair` rows (padding: segment :data:`PAD`, position 0)."""
    import torch

    width = max(len(r["ids"]) for r in rows)

    def padded(key: str, value: int) -> Any:
        return torch.tensor([r[key] + [value] * (width - len(r[key])) for r in rows], dtype=torch.long)

    return {
        "input_ids": padded("ids", pad_token_id),
        "segments": padded("segments", PAD),
        "position_ids": padded("positions", 0),
        "predictor": padded("predictor", -1),
        "completion_mask": padded("completion", 0),
        "ends": torch.tensor([r["ends"] for r in rows], dtype=torch.long),
    }


def packed_attention_mask(segments: Any, dtype: Any = None) -> Any:
    """The 4-D mask of packed rows: causal, and a reply sees the shared prefix and itself only; padding
    sees itself (so no attention row is empty). Boolean (True: attend), or additive in ``dtype``."""
    import torch

    width = segments.shape[1]
    index = torch.arange(width, device=segments.device)
    query, key = segments[:, :, None], segments[:, None, :]
    allowed = (index[None, :] <= index[:, None])[None] & (key != PAD) & ((key == SHARED) | (key == query))
    allowed = (allowed | torch.eye(width, dtype=torch.bool, device=segments.device)[None])[:, None]
    if dtype is None:
        return allowed
    return torch.where(allowed, torch.zeros((), dtype=dtype), torch.finfo(dtype).min)


def packed_forward(model: Any, batch: dict[str, Any], **kwargs: Any) -> Any:
    """One forward pass over packed pair rows (through the model's own ``forward``, so DDP sees it).

    SDPA takes a boolean mask (any query dtype, bf16 autocast included); eager attention adds the mask
    to its scores, so it gets an additive one in the weights' dtype."""
    inner = getattr(model, "module", model)  # DDP
    config = inner.config
    if getattr(config, "_attn_implementation", "sdpa") == "eager":
        mask = packed_attention_mask(batch["segments"], next(inner.parameters()).dtype)
    else:
        mask = packed_attention_mask(batch["segments"])
    return model(
        input_ids=batch["input_ids"],
        attention_mask=mask,
        position_ids=batch["position_ids"],
        use_cache=False,
        **kwargs,
    )


def packed_pair_logps(model: Any, batch: dict[str, Any]) -> Any:
    """Completion log-probs of both sequences of every packed row: [first..., second...] (2B values).

    Only positions from the earliest predictor on get logits: the 49k-word output layer over long prompts
    would otherwise be most of the cost on a CPU."""
    import torch

    predictor, completion = batch["predictor"], batch["completion_mask"]
    scored = completion.bool() & (predictor >= 0)
    width = batch["input_ids"].shape[1]
    start = int(torch.where(scored, predictor, width).min().clamp(max=width - 1))
    logits = packed_forward(model, batch, logits_to_keep=width - start).logits.float()
    rows = torch.arange(logits.shape[0], device=logits.device)[:, None]
    at = (predictor - start).clamp(min=0)  # each token's predicting position inside the kept window
    token_logps = logits[rows, at, batch["input_ids"]] - logits.logsumexp(-1)[rows, at]
    token_logps = torch.where(scored, token_logps, torch.zeros_like(token_logps))
    segments = batch["segments"]
    first = (token_logps * ((segments == SHARED) | (segments == FIRST))).sum(-1)
    second = (token_logps * ((segments == SHARED) | (segments == SECOND))).sum(-1)
    return torch.cat([first, second])


def _score_module(model: Any) -> Any:
    """The sequence-classification head (PEFT's trainable copy when wrapped)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.score


def packed_pair_scores(model: Any, unwrapped: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """Preference-model scores (first, second) of packed rows: the head's output at each sequence's last
    token, read by a hook because the model's own pooling keeps one position per row."""
    import torch

    captured: list[Any] = []
    hook = _score_module(unwrapped).register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        outputs = packed_forward(model, batch)
    finally:
        hook.remove()
    scores = captured[-1].squeeze(-1)
    rows = torch.arange(scores.shape[0], device=scores.device)
    ends = batch["ends"].to(scores.device)
    return scores[rows, ends[:, 0]], scores[rows, ends[:, 1]], outputs


def score_pairs(
    model: Any, pairs: list[tuple[list[int], list[int]]], pad_token_id: int, batch_size: int = 4
) -> list[tuple[float, float]]:
    """Scores of (chosen ids, rejected ids) pairs, packed and batched by length (no gradient)."""
    import torch

    order = sorted(range(len(pairs)), key=lambda k: len(pairs[k][0]) + len(pairs[k][1]))
    out: dict[int, tuple[float, float]] = {}
    model = model.eval()
    with torch.no_grad():
        for k in range(0, len(order), batch_size):
            keys = order[k : k + batch_size]
            batch = collate_packed([pack_pair(*pairs[i]) for i in keys], pad_token_id)
            batch = {name: value.to(model.device) for name, value in batch.items()}
            first, second, _ = packed_pair_scores(model, model, batch)
            for i, a, b in zip(keys, first.tolist(), second.tolist(), strict=True):
                out[i] = (a, b)
    return [out[k] for k in range(len(pairs))]


def _trainer_classes() -> tuple[type, type]:
    """Build the two subclasses lazily (importing TRL takes seconds; the CLI must stay fast)."""
    import torch
    from trl import DPOTrainer, RewardTrainer

    class PackedPairCollator:
        """Batches of packed pair rows (:func:`pack_pair`) from TRL's tokenised columns, with ``target``.

        DPO rows (``prompt_ids`` + ``chosen_ids``/``rejected_ids``) are truncated per sequence to
        ``max_length`` exactly as TRL's own collator truncates them (``rl.train.max_length`` bounds every
        sequence; a packed row holds two); reward rows (whole ``chosen_ids``/``rejected_ids``) are already
        filtered to ``max_length`` by TRL."""

        def __init__(
            self, pad_token_id: int, max_length: int | None = None, truncation_mode: str = "keep_start"
        ):
            if truncation_mode not in ("keep_start", "keep_end"):
                raise ValueError(f"truncation_mode {truncation_mode!r}: expected 'keep_start' or 'keep_end'")
            self.pad_token_id = pad_token_id
            self.max_length, self.truncation_mode = max_length, truncation_mode

        def _cut(self, ids: list[int]) -> list[int]:
            if self.max_length is None or len(ids) <= self.max_length:
                return ids
            return ids[: self.max_length] if self.truncation_mode == "keep_start" else ids[-self.max_length :]

        def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            packed = []
            for e in examples:
                if "prompt_ids" in e:
                    prompt = list(e["prompt_ids"])
                    sides = [
                        (self._cut(prompt + list(e[k])), self._cut([0] * len(prompt) + [1] * len(e[k])))
                        for k in ("chosen_ids", "rejected_ids")
                    ]
                    packed.append(pack_pair(sides[0][0], sides[1][0], sides[0][1], sides[1][1]))
                else:
                    packed.append(pack_pair(list(e["chosen_ids"]), list(e["rejected_ids"])))
            batch = collate_packed(packed, self.pad_token_id)
            batch["target"] = torch.tensor([float(e["target"]) for e in examples])
            if "index" in examples[0]:
                batch["index"] = torch.tensor([int(e["index"]) for e in examples])
            return batch

    class SoftLabelRewardTrainer(RewardTrainer):
        """RewardTrainer whose loss is the cross-entropy against the soft label in the ``target`` column,
        on packed pair rows (the shared conversation computed once)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            tokenizer = kwargs["processing_class"]
            kwargs.setdefault("data_collator", PackedPairCollator(tokenizer.pad_token_id))
            super().__init__(*args, **kwargs)

        def _set_signature_columns_if_needed(self) -> None:
            if self._signature_columns is None:
                self._signature_columns = ["chosen_ids", "rejected_ids", "target", "length"]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            target = inputs.pop("target")
            mode = "train" if self.model.training else "eval"
            unwrapped = self.accelerator.unwrap_model(model)
            chosen, rejected, outputs = packed_pair_scores(model, unwrapped, inputs)
            loss = soft_bce(chosen - rejected, target.to(chosen.dtype))
            with torch.no_grad():
                self._metrics[mode]["accuracy"].append((chosen > rejected).float().mean().item())
                self._metrics[mode]["margin"].append((chosen - rejected).mean().item())
            return (loss, outputs) if return_outputs else loss

    class SoftDPOTrainer(DPOTrainer):
        """DPOTrainer with the soft-label cross-entropy on the implicit reward margin (sigmoid family), on
        packed pair rows (the prompt computed once for both replies, policy and reference alike).

        The reference model never changes, so its log-probabilities are computed once per pair (keyed by
        the ``index`` column) and reused by later epochs and by the evaluation after training, which then
        costs one forward pass per pair instead of two.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            tokenizer, config = kwargs["processing_class"], kwargs["args"]
            # rl.train.max_length bounds every sequence (TRL's collator gets it only when TRL builds it)
            collator = PackedPairCollator(
                tokenizer.pad_token_id, max_length=config.max_length, truncation_mode=config.truncation_mode
            )
            kwargs.setdefault("data_collator", collator)
            super().__init__(*args, **kwargs)
            self._reference_logps: dict[int, tuple[float, float]] = {}

        def _set_signature_columns_if_needed(self) -> None:
            if self._signature_columns is None:
                self._signature_columns = [
                    "prompt_ids",
                    "chosen_ids",
                    "rejected_ids",
                    "target",
                    "index",
                    "length",
                ]

        def _reference(self, model: Any, inputs: dict[str, Any], like: Any) -> Any:
            """Reference log-probs [chosen..., rejected...] for the batch, from the cache where known."""
            keys = [int(i) for i in inputs["index"]] if "index" in inputs else None
            if keys is not None and all(k in self._reference_logps for k in keys):
                pairs = [self._reference_logps[k] for k in keys]
                return torch.tensor([c for c, _ in pairs] + [r for _, r in pairs], dtype=like.dtype)
            with torch.no_grad():
                if self.ref_model is not None:
                    reference = packed_pair_logps(self.ref_model, inputs)
                else:  # LoRA: the reference is the same model with its adapters switched off
                    with self.accelerator.unwrap_model(self.model).disable_adapter():
                        reference = packed_pair_logps(model, inputs)
            if keys is not None:
                chosen, rejected = reference.chunk(2, dim=0)
                for k, c, r in zip(keys, chosen.tolist(), rejected.tolist(), strict=True):
                    self._reference_logps[k] = (c, r)
            return reference

        def _compute_loss(self, model, inputs, return_outputs):  # noqa: ANN001
            mode = "train" if self.model.training else "eval"
            target = inputs["target"]
            policy = packed_pair_logps(model, inputs)
            reference = self._reference(model, inputs, policy).to(policy.device)
            ratios = policy - reference
            chosen, rejected = ratios.chunk(2, dim=0)
            margin = self.beta * (chosen - rejected)
            loss = soft_bce(margin, target.to(margin.dtype))
            pol_c, pol_r = policy.detach().chunk(2, dim=0)
            for key, value in {
                "rewards/chosen": (self.beta * chosen).mean(),
                "rewards/rejected": (self.beta * rejected).mean(),
                "rewards/margins": margin.mean(),
                "rewards/accuracies": (margin > 0).float().mean(),
                "logps/chosen": pol_c.mean(),
                "logps/rejected": pol_r.mean(),
                "soft_label": target.mean(),
            }.items():
                self._metrics[mode][key].append(float(value.detach()))
            return (loss, None) if return_outputs else loss

    return SoftLabelRewardTrainer, SoftDPOTrainer


def train_reward_model(
    model_dir: Path,
    rows: list[dict],
    config: RLConfig,
    out_dir: Path,
    *,
    seed: int,
    bf16: bool,
    device: str,
    callbacks: list[Any],
) -> tuple[Any, dict[str, Any]]:
    """A sequence-classification preference model (one scalar) trained on the soft labels."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig

    from ccai.formats.hf import to_dataset
    from ccai.models.prepare import load_tokenizer
    from ccai.training.runs import latest_checkpoint, lora_config, quiet, trainer_kwargs

    reward_cls, _ = _trainer_classes()
    optim = config.pm_train
    targets = training_targets([r for r in rows if r.get("source", "ai_harmless") in PM_SOURCES], config)
    if not targets:
        raise ValueError("no preference pairs left to train the preference model on (check rl.min_margin)")
    tokenizer = load_tokenizer(model_dir)
    dataset = to_dataset(
        pair_lengths(tokenizer, targets), ["prompt", "chosen", "rejected", "target", "length"]
    )
    model = AutoModelForSequenceClassification.from_pretrained(
        str(model_dir), num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    args = RewardConfig(
        **trainer_kwargs(optim, out_dir, seed=seed, bf16=bf16, device=device, group_by_length=True),
        max_length=optim.max_length,
        center_rewards_coefficient=None,
        dataset_num_proc=None,
    )
    peft = lora_config(optim, task_type="SEQ_CLS")
    trainer = quiet(
        reward_cls(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft,
            callbacks=callbacks,
        )
    )
    checkpoint = latest_checkpoint(out_dir)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    probe = dataset.select(range(min(PROBE_ROWS, len(dataset))))
    return trainer, {
        "rows": len(dataset),
        "train_loss": output.training_loss,
        "steps": trainer.state.global_step,
        "agreement_with_labels": _pm_agreement(trainer, probe),
        "agreement_pairs": len(probe),
        "resumed_from": checkpoint.name if checkpoint else None,
    }


def pm_accuracy(model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_length: int) -> float | None:
    """Share of human comparisons where the preference model scores ``chosen`` above ``rejected`` (chance
    0.5); conversations longer than ``max_length`` tokens keep their end (the replies being compared)."""
    if not rows:
        return None

    def ids(row: dict[str, Any], side: str) -> list[int]:
        text = tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=False)
        return tokenizer(text, add_special_tokens=False)["input_ids"][-max_length:]

    scores = score_pairs(
        model, [(ids(r, "chosen"), ids(r, "rejected")) for r in rows], tokenizer.pad_token_id
    )
    return sum(a > b for a, b in scores) / len(rows)


def _pm_agreement(trainer: Any, dataset: Any) -> float:
    """Share of the (training) pairs where the PM scores ``chosen`` above ``rejected``: a fit check."""
    prepared = trainer._prepare_dataset(dataset, trainer.processing_class, trainer.args, "agreement")
    pairs = [(list(row["chosen_ids"]), list(row["rejected_ids"])) for row in prepared]
    scores = score_pairs(trainer.model, pairs, trainer.processing_class.pad_token_id)
    return sum(a > b for a, b in scores) / max(1, len(prepared))


def train_dpo(
    model_dir: Path,
    rows: list[dict],
    config: RLConfig,
    out_dir: Path,
    *,
    seed: int,
    bf16: bool,
    device: str,
    callbacks: list[Any],
    measure_loss: bool,
) -> tuple[Any, dict[str, Any]]:
    """Soft-label DPO from the SL model; with LoRA the reference is the SL model itself (adapters off)."""
    from trl import DPOConfig

    from ccai.formats.hf import to_dataset
    from ccai.models.prepare import load_causal_lm, load_tokenizer
    from ccai.training.runs import latest_checkpoint, lora_config, quiet, trainer_kwargs

    _, dpo_cls = _trainer_classes()
    optim = config.train
    targets = training_targets(rows, config)
    if not targets:
        raise ValueError("no preference pairs left for DPO (check rl.min_margin)")
    tokenizer = load_tokenizer(model_dir)
    dataset = to_dataset(
        [{**t, "index": k} for k, t in enumerate(pair_lengths(tokenizer, targets))],
        ["prompt", "chosen", "rejected", "target", "index", "length"],
    )
    probe = dataset.select(range(min(PROBE_ROWS, len(dataset))))
    args = DPOConfig(
        **trainer_kwargs(optim, out_dir, seed=seed, bf16=bf16, device=device, group_by_length=True),
        beta=config.beta,
        max_length=optim.max_length,
        dataset_num_proc=None,
        precompute_ref_log_probs=False,
    )
    peft = lora_config(optim)
    ref = None if peft is not None else load_causal_lm(model_dir)
    trainer = quiet(
        dpo_cls(
            model=load_causal_lm(model_dir),
            ref_model=ref,
            args=args,
            train_dataset=dataset,
            eval_dataset=probe if measure_loss else None,
            processing_class=tokenizer,
            peft_config=peft,
            callbacks=callbacks,
        )
    )
    checkpoint = latest_checkpoint(out_dir)
    results: dict[str, Any] = {"rows": len(dataset), "resumed_from": checkpoint.name if checkpoint else None}
    if measure_loss:
        # The policy starts equal to its reference (LoRA's B = 0, or a copy of the SL model), so every
        # margin is 0 and the loss is ln 2 whatever the labels: no pass over the data is needed to know it
        # (the first logged training step shows it; tests check that).
        results["loss_before"] = math.log(2)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    results.update(train_loss=output.training_loss, steps=trainer.state.global_step)
    if measure_loss:
        results["loss_after"] = trainer.evaluate()["eval_loss"]
    return trainer, results


def online_kl_beta(config: RLConfig) -> float:
    """The KL coefficient of online RL: ``rl.kl_beta``, else TRL's default for the method."""
    if config.kl_beta is not None:
        return config.kl_beta
    return 0.0 if config.method == "grpo" else 0.05


def train_online(
    model_dir: Path,
    pm_dir: Path,
    prompts: list[Prompt],
    config: RLConfig,
    out_dir: Path,
    *,
    seed: int,
    bf16: bool,
    device: str,
    callbacks: list[Any],
) -> tuple[Any, dict[str, Any]]:
    """GRPO or RLOO from the SL model with the preference model as the reward (TRL generates on-policy)."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    from ccai.formats.hf import to_dataset
    from ccai.models.prepare import load_causal_lm, load_tokenizer
    from ccai.training.runs import latest_checkpoint, lora_config, quiet, trainer_kwargs

    optim = config.train
    cfg_cls, trainer_cls = (GRPOConfig, GRPOTrainer) if config.method == "grpo" else (RLOOConfig, RLOOTrainer)
    dataset = to_dataset([{"prompt": user(p.text)} for p in prompts], ["prompt"])
    tokenizer = load_tokenizer(model_dir)
    tokenizer.padding_side = "left"
    reward_tokenizer = load_tokenizer(pm_dir)
    reward_model = AutoModelForSequenceClassification.from_pretrained(
        str(pm_dir), num_labels=1, dtype=torch.float32
    )
    reward_model.config.pad_token_id = reward_tokenizer.pad_token_id
    kwargs = trainer_kwargs(optim, out_dir, seed=seed, bf16=bf16, device=device)
    batch = max(optim.batch_size, config.num_generations)
    batch -= batch % config.num_generations
    kwargs["per_device_train_batch_size"] = batch
    args = cfg_cls(
        **kwargs,
        num_generations=config.num_generations,
        beta=online_kl_beta(config),
        max_completion_length=config.generation.max_new_tokens,
        temperature=config.generation.temperature,
        top_p=config.generation.top_p,
    )
    trainer = quiet(
        trainer_cls(
            model=load_causal_lm(model_dir),
            reward_funcs=reward_model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            reward_processing_classes=reward_tokenizer,
            peft_config=lora_config(optim),
            callbacks=callbacks,
        )
    )
    checkpoint = latest_checkpoint(out_dir)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    return trainer, {
        "prompts": len(dataset),
        "train_loss": output.training_loss,
        "steps": trainer.state.global_step,
        "reward_first": rewards[0] if rewards else None,
        "reward_last": rewards[-1] if rewards else None,
        "resumed_from": checkpoint.name if checkpoint else None,
    }
