"""Paired differences to the reference model, and when the report may say "no difference"."""

from __future__ import annotations

import pytest

from ccai.evaluation.stats import default_margin, mean_of, paired_difference


def _records(flags: list[bool]) -> list[dict]:
    return [{"id": f"q{k}", "correct": f} for k, f in enumerate(flags)]


def test_identical_models_are_equivalent_and_a_clear_gain_is_better() -> None:
    ref = _records([k % 2 == 0 for k in range(400)])
    same = paired_difference(
        ref, ref, mean_of("correct"), seed=0, n_boot=300, margin=5, higher_is_better=True
    )
    assert same["delta"] == 0 and same["low"] == 0 == same["high"] and same["verdict"] == "equivalent"
    better = _records([True] * 400)
    gain = paired_difference(
        ref, better, mean_of("correct"), seed=0, n_boot=300, margin=5, higher_is_better=True
    )
    assert gain["delta"] == pytest.approx(50.0) and gain["low"] > 40 and gain["verdict"] == "better"
    worse = paired_difference(
        better, ref, mean_of("correct"), seed=0, n_boot=300, margin=5, higher_is_better=True
    )
    assert worse["verdict"] == "worse"


def test_a_small_sample_is_inconclusive_not_no_difference() -> None:
    """Two models that differ on a few of 20 items: no significant difference, but no equivalence either."""
    ref = _records([k % 2 == 0 for k in range(20)])
    other = _records([k % 3 == 0 for k in range(20)])
    found = paired_difference(
        ref, other, mean_of("correct"), seed=1, n_boot=500, margin=5, higher_is_better=True
    )
    assert found["low"] < 0 < found["high"]
    assert found["verdict"] == "inconclusive" and found["p_tost"] > 0.05


def test_a_few_items_with_no_spread_never_prove_equivalence() -> None:
    """Both models at 0 % on 4 questions: every resample gives a difference of 0, yet that proves nothing."""
    zeros = _records([False] * 4)
    found = paired_difference(zeros, zeros, mean_of("correct"), seed=0, n_boot=100, margin=5)
    assert found["high90"] == 0 and found["verdict"] == "inconclusive"


def test_pairing_uses_only_shared_items_and_the_same_draws() -> None:
    ref = _records([True, False, True, False])
    other = [{"id": "q0", "correct": True}, {"id": "q1", "correct": True}, {"id": "zz", "correct": False}]
    found = paired_difference(ref, other, mean_of("correct"), seed=0, n_boot=100, margin=5)
    assert found["n"] == 2 and found["delta"] == pytest.approx(50.0)
    again = paired_difference(ref, other, mean_of("correct"), seed=0, n_boot=100, margin=5)
    assert again == found


def test_stated_margins() -> None:
    assert default_margin("mmlu.accuracy") == 5.0
    assert default_margin("bbq.mean_abs_bias_ambig") == 5.0
    assert default_margin("opinionqa.representativeness") == 0.02
    assert default_margin("helpfulness.elo") == 50.0
