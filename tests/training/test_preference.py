"""Soft labels in training: the shared loss, the DPO subclass against a manual computation, binarising."""

from __future__ import annotations

import math

import pytest
import torch

from ccai.formats.hf import assistant, user
from ccai.training.config import RLConfig
from ccai.training.preference import (
    FIRST,
    SECOND,
    SHARED,
    _trainer_classes,
    soft_bce,
    training_targets,
)


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
        activation_checkpointing=False,
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
    loss = float(trainer.compute_loss(trainer.model, batch).detach())

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


def test_soft_dpo_batches_honour_max_length(tiny_model, tmp_path):
    """rl.train.max_length bounds every batch (TRL's own collator got it; ours did not, issue 15 item 4)."""
    long = {
        # a short prompt (TRL drops rows whose prompt alone fills max_length) and a long reply
        "prompt": user("Tell me a story about a very long winding road."),
        "chosen": assistant("Once upon a time there was a road. " * 30),
        "rejected": assistant("No."),
        "target": 0.7,
    }
    trainer = _dpo_trainer(tiny_model, tmp_path, [long, ROWS[0]])
    tokenizer = trainer.processing_class
    full = tokenizer.apply_chat_template(long["prompt"] + long["chosen"], tokenize=False)
    assert len(tokenizer(full, add_special_tokens=False)["input_ids"]) > 128  # would exceed the limit
    batch = next(iter(trainer.get_train_dataloader()))
    segments = batch["segments"]  # a packed row holds both sequences: each is bounded
    for reply in (FIRST, SECOND):
        assert int(((segments == SHARED) | (segments == reply)).sum(-1).max()) <= 128
    assert int(((segments == SHARED) | (segments == FIRST)).sum(-1).max()) == 128  # the long one was cut
    assert torch.isfinite(trainer.compute_loss(trainer.model, batch))


def test_preference_model_loss_is_the_soft_cross_entropy_of_its_scores(tiny_model, tmp_path):
    """SoftLabelRewardTrainer: loss = -[p log s(d) + (1-p) log s(-d)], d = r(chosen) - r(rejected)."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig

    from ccai.models.prepare import load_tokenizer

    reward_cls, _ = _trainer_classes()
    tokenizer = load_tokenizer(tiny_model)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model), num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    args = RewardConfig(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=2,
        max_length=128,
        center_rewards_coefficient=None,
        activation_checkpointing=False,  # as trainer_kwargs sets it on the real path
    )
    trainer = reward_cls(
        model=model, args=args, train_dataset=Dataset.from_list(ROWS), processing_class=tokenizer
    )
    batch = next(iter(trainer.get_train_dataloader()))
    targets = batch["target"].clone()
    loss = float(trainer.compute_loss(trainer.model, dict(batch)))
    scores = []
    with torch.no_grad():
        for row in ROWS:
            pair = []
            for side in ("chosen", "rejected"):
                text = tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=False)
                ids = tokenizer(text, add_special_tokens=False)["input_ids"]
                pair.append(float(trainer.model(input_ids=torch.tensor([ids])).logits[0, 0]))
            scores.append(pair)
    by_target = {round(float(r["target"]), 6): s for r, s in zip(ROWS, scores, strict=True)}
    manual = []
    for p in targets.tolist():
        chosen, rejected = by_target[round(p, 6)]
        d = chosen - rejected
        manual.append(-(p * math.log(1 / (1 + math.exp(-d))) + (1 - p) * math.log(1 / (1 + math.exp(d)))))
    assert loss == pytest.approx(sum(manual) / len(manual), rel=1e-3)
    assert loss != pytest.approx(-math.log(1 / (1 + math.exp(-(scores[0][0] - scores[0][1])))), rel=1e-3)


def test_online_kl_coefficient_is_configurable():
    from ccai.training.preference import online_kl_beta

    assert online_kl_beta(RLConfig(method="grpo")) == 0.0
    assert online_kl_beta(RLConfig(method="rloo")) == 0.05
    assert online_kl_beta(RLConfig(method="grpo", kl_beta=0.2)) == 0.2


def test_revision_pairs_prefer_the_accepted_revision():
    from ccai.training.preference import helpful_count, revision_pairs

    base = {"prompt": user("q"), "initial_response": "bad answer", "constitution_hash": "h"}
    rows = [
        {**base, "id": "a", "source": "red_team", "completion": assistant("better answer"), "dropped": None},
        {**base, "id": "b", "source": "red_team", "completion": assistant("x"), "dropped": "truncated"},
        {**base, "id": "c", "source": "helpful", "completion": assistant("fine"), "dropped": None},
        {**base, "id": "d", "source": "red_team", "completion": assistant("bad answer"), "dropped": None},
    ]
    pairs = revision_pairs(rows)
    assert [p["id"] for p in pairs] == ["a:revision"]
    assert (
        pairs[0]["chosen"][0]["content"] == "better answer"
        and pairs[0]["rejected"][0]["content"] == "bad answer"
    )
    assert pairs[0]["source"] == "revision" and pairs[0]["soft_label"] == 1.0
    assert helpful_count(60, 0.4) == 40 and helpful_count(60, 0.0) == 0


def test_pack_pair_shares_the_prefix_and_restarts_positions():
    from ccai.training.preference import pack_pair

    row = pack_pair([5, 6, 7, 8], [5, 6, 9], [0, 0, 1, 1], [0, 0, 1])
    assert row["ids"] == [5, 6, 7, 8, 9]
    assert row["segments"] == [SHARED, SHARED, FIRST, FIRST, SECOND]
    assert row["positions"] == [0, 1, 2, 3, 2]
    assert row["predictor"] == [-1, 0, 1, 2, 1]  # the second reply is predicted from the prompt's end
    assert row["completion"] == [0, 0, 1, 1, 1]
    assert row["ends"] == [3, 4]
    # one sequence a prefix of the other: each still keeps a token of its own
    assert pack_pair([1, 2], [1, 2, 3])["segments"] == [SHARED, FIRST, SECOND, SECOND]
    assert pack_pair([1], [2])["positions"] == [0, 0]
    with pytest.raises(ValueError, match="at least one token"):
        pack_pair([], [1])


def test_packed_scores_equal_separate_forward_passes(tiny_model):
    """Packed, padded, batched pairs give each sequence the score of its own forward pass."""
    from transformers import AutoModelForSequenceClassification

    from ccai.models.prepare import load_tokenizer
    from ccai.training.preference import pm_accuracy, score_pairs

    tokenizer = load_tokenizer(tiny_model)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model), num_labels=1).eval()
    model.config.pad_token_id = tokenizer.pad_token_id
    rows = [*ROWS, {**ROWS[0], "prompt": user("A much longer question, " * 6), "chosen": assistant("ok")}]

    def ids(row, side):
        text = tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=False)
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    pairs = [(ids(r, "chosen"), ids(r, "rejected")) for r in rows]
    packed = score_pairs(model, pairs, tokenizer.pad_token_id, batch_size=3)
    with torch.no_grad():
        for (a, b), (score_a, score_b) in zip(pairs, packed, strict=True):
            assert float(model(input_ids=torch.tensor([a])).logits[0, 0]) == pytest.approx(score_a, abs=1e-4)
            assert float(model(input_ids=torch.tensor([b])).logits[0, 0]) == pytest.approx(score_b, abs=1e-4)
    expected = sum(a > b for a, b in packed) / len(rows)
    assert pm_accuracy(model, tokenizer, rows, max_length=512) == expected
