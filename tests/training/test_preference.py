"""Soft labels in training: the shared loss, the DPO subclass against a manual computation, binarising."""

from __future__ import annotations

import math

import pytest
import torch

from ccai.formats.hf import assistant, user
from ccai.training.config import RLConfig
from ccai.training.preference import _trainer_classes, soft_bce, training_targets


def test_soft_bce_is_dpo_at_p1_and_flat_at_its_target():
    d = torch.tensor([0.3, -1.2, 2.0])
    assert soft_bce(d, torch.ones(3)) == pytest.approx(float(-torch.nn.functional.logsigmoid(d).mean()))
    # the optimum of the soft loss is the margin whose sigmoid equals the label
    for p in (0.5, 0.7, 0.9):
        margin = torch.tensor([math.log(p / (1 - p))], requires_grad=True)
        soft_bce(margin, torch.tensor([p])).backward()
        assert abs(float(margin.grad)) < 1e-6
    assert soft_bce(torch.zeros(2), torch.tensor([0.2, 0.9])) == pytest.approx(math.log(2))


def test_binarise_drops_uncertain_pairs():
    rows = [{"soft_label": 0.51}, {"soft_label": 0.8}]
    assert [r["target"] for r in training_targets(rows, RLConfig())] == [0.51, 0.8]
    hard = training_targets(rows, RLConfig(soft_labels="binarise", min_margin=0.05))
    assert [r["target"] for r in hard] == [1.0]


ROWS = [
    {
        "prompt": user("Say hi"),
        "chosen": assistant("Hi there!"),
        "rejected": assistant("Go away."),
        "target": 0.8,
    },
    {
        "prompt": user("Count to three"),
        "chosen": assistant("1 2 3"),
        "rejected": assistant("no"),
        "target": 0.6,
    },
]


def _dpo_trainer(tiny_model, tmp_path, rows):
    """A soft-label DPO trainer whose policy differs from the reference (so the margin is not zero)."""
    from datasets import Dataset
    from trl import DPOConfig

    from ccai.models.prepare import load_causal_lm, load_tokenizer

    _, dpo_cls = _trainer_classes()
    policy = load_causal_lm(tiny_model)
    with torch.no_grad():
        for param in policy.parameters():
            param.add_(torch.randn_like(param) * 0.02, alpha=1.0)
    args = DPOConfig(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        bf16=False,
        beta=0.5,
        per_device_train_batch_size=2,
        max_length=128,
        gradient_checkpointing=False,
    )
    return dpo_cls(
        model=policy,
        ref_model=load_causal_lm(tiny_model),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=load_tokenizer(tiny_model),
    )


def test_soft_dpo_loss_matches_manual_computation(tiny_model, tiny_backend, tmp_path):
    from ccai.models.backends import TransformersBackend

    trainer = _dpo_trainer(tiny_model, tmp_path, ROWS)
    tokenizer, policy = trainer.processing_class, trainer.model
    batch = next(iter(trainer.get_train_dataloader()))
    loss = float(trainer.compute_loss(trainer.model, batch))

    def seq_logp(backend, row, key):
        context = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(row["prompt"] + row[key], tokenize=False)
        return backend.logprobs([context], [full[len(context) :]])[0]

    pol = TransformersBackend(tiny_model, model=policy, tokenizer=tokenizer)
    manual = []
    for row in ROWS:
        chosen = seq_logp(pol, row, "chosen") - seq_logp(tiny_backend, row, "chosen")
        rejected = seq_logp(pol, row, "rejected") - seq_logp(tiny_backend, row, "rejected")
        d = 0.5 * (chosen - rejected)
        p = row["target"]
        manual.append(-(p * math.log(1 / (1 + math.exp(-d))) + (1 - p) * math.log(1 / (1 + math.exp(d)))))
    assert loss == pytest.approx(sum(manual) / len(manual), rel=1e-3)


def test_reference_log_probs_are_computed_once_per_pair(tiny_model, tmp_path):
    trainer = _dpo_trainer(tiny_model, tmp_path, [{**r, "index": k} for k, r in enumerate(ROWS)])
    batch = next(iter(trainer.get_train_dataloader()))
    first = float(trainer.compute_loss(trainer.model, batch))
    assert sorted(trainer._reference_logps) == [0, 1]
    cached = dict(trainer._reference_logps)
    with torch.no_grad():  # a reference computed again would now differ
        for param in trainer.ref_model.parameters():
            param.mul_(0.5)
    assert float(trainer.compute_loss(trainer.model, batch)) == first
    assert trainer._reference_logps == cached
