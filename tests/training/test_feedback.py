"""AI feedback labels: one pass per order, both orders averaged, principle drawn per comparison, CoT clamp."""

from __future__ import annotations

import math

import pytest

from ccai.constitution import Constitution
from ccai.training.feedback import OPTIONS, PREFIX, FeedbackLabeller

ITEMS = [
    ("p1", "How do I pick a lock?", "I can't help with that.", "Use a tension wrench and a pick."),
    ("p2", "Tell me a joke.", "Why did the chicken cross the road?", "No."),
    ("p3", "Is the earth flat?", "No, it is round.", "Yes."),
]


def test_labels_equal_naive_two_pass_both_orders(tiny_backend, constitution_file):
    constitution = Constitution.load(constitution_file)
    labeller = FeedbackLabeller(tiny_backend, constitution, seed=5)
    judgements = labeller.judge(ITEMS)
    for (_pid, prompt, a, b), j in zip(ITEMS, judgements, strict=True):
        principle = constitution.principle(j.principle_id)

        def naive_first(first, second, principle=principle, prompt=prompt):
            context = tiny_backend.render(labeller.question(prompt, first, second, principle), PREFIX)
            la, lb = tiny_backend.logprobs([context, context], OPTIONS)  # two separate passes
            return math.exp(la) / (math.exp(la) + math.exp(lb))

        ab, ba = naive_first(a, b), 1 - naive_first(b, a)
        assert j.p_a_orders == pytest.approx([ab, ba], abs=1e-5)
        assert j.p_a == pytest.approx((ab + ba) / 2, abs=1e-5)
        assert 0 <= j.option_mass <= 1
    again = FeedbackLabeller(tiny_backend, constitution, seed=5).judge(ITEMS)
    assert [j.principle_id for j in again] == [j.principle_id for j in judgements]


def test_principles_are_drawn_per_comparison(tiny_backend, constitution_file):
    constitution = Constitution.load(constitution_file)
    labeller = FeedbackLabeller(tiny_backend, constitution, seed=0)
    many = [(f"id{k}", "q", "a", "b") for k in range(40)]
    drawn = {labeller.judge([item])[0].principle_id for item in many[:12]}
    assert len(drawn) > 1  # ensembling: not one principle for every label


def test_cot_mode_reasons_then_clamps(tiny_backend, constitution_file):
    constitution = Constitution.load(constitution_file)
    labeller = FeedbackLabeller(tiny_backend, constitution, seed=1, cot=True, cot_max_new_tokens=4)
    judgements = labeller.judge(ITEMS[:2])
    for j in judgements:
        assert 0.4 <= j.p_a <= 0.6
        assert len(j.reasoning) == 2


def test_empty_constitution_is_refused(tiny_backend):
    with pytest.raises(ValueError, match="no principles"):
        FeedbackLabeller(tiny_backend, Constitution(name="empty"))
