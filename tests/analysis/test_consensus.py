"""Consensus statistics on hand-computed numbers and Polis's own published check values."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ccai.analysis import comment_priority
from ccai.analysis import consensus as cs


def test_repness_test_vector_from_polis_output():
    # red-dwarf fixture below-100-ptpts, group 0, tid 4 (polis-math.md §12): A=6, S=6 in the group;
    # the rest has A=4 of S=10.
    stats = cs.repness_stats(np.array([[6], [4]]), np.array([[0], [0]]), np.array([[6], [10]]))
    assert_allclose(stats["p_agree"][0, 0], 0.875)
    assert_allclose(stats["p_agree_test"][0, 0], 2.64575, atol=1e-5)
    assert_allclose(stats["r_agree"][0, 0], 2.1)
    assert_allclose(stats["r_agree_test"][0, 0], 2.393172, atol=1e-6)
    assert_allclose(cs.prop_test(15, 16), 3.63803, atol=1e-5)


@pytest.mark.parametrize(
    ("agree", "passes", "seen", "extremity", "expected"),
    [
        (1, 0, 1, 0.0, 12.53),
        (20, 3, 20, 0.0, 1.372),
        (18, 3, 20, 1.0, 4.494),
        (0, 0, 0, 0.0, 5.06),
    ],
)
def test_comment_priority_check_values(agree, passes, seen, extremity, expected):
    disagree = seen - agree - passes
    value = comment_priority(
        np.array([agree]), np.array([disagree]), np.array([seen]), np.array([extremity]), np.array([False])
    )
    assert value[0] == pytest.approx(expected, abs=5e-3)


def test_meta_statements_get_priority_49():
    value = comment_priority(
        np.array([3, 3]), np.array([1, 1]), np.array([5, 5]), np.array([0.5, 0.5]), np.array([True, False])
    )
    assert value[0] == 49.0 and value[1] != 49.0


def test_gac_variants_on_worked_example():
    # 2 of 2 agree in each of 2 groups: Polis (3/4)^2 = 0.5625; 75 of 100: (76/102)^2.
    agree, disagree, seen = (
        np.array([[2, 75], [2, 75]]),
        np.array([[0, 20], [0, 20]]),
        np.array([[2, 100], [2, 100]]),
    )
    assert_allclose(cs.gac_polis(agree, seen), [0.5625, (76 / 102) ** 2])
    assert_allclose(cs.gac_ccai(agree, seen), [1.0, 0.75**2])
    assert_allclose(cs.gac_pass_excluded(agree, disagree), [1.0, (75 / 95) ** 2])
    p_a, p_d = (75.5 / 101), (20.5 / 101)
    assert_allclose(cs.gac_jeffreys(agree, disagree, seen)[1], p_a * (1 - p_d))
    # geometric mean: a third identical group does not change the Jeffreys score, but shrinks Polis's
    three = cs.gac_jeffreys(
        np.vstack([agree, agree[:1]]), np.vstack([disagree, disagree[:1]]), np.vstack([seen, seen[:1]])
    )
    assert_allclose(three, cs.gac_jeffreys(agree, disagree, seen))


def test_gac_unseen_group_contributes_zero():
    assert cs.gac_ccai(np.array([[3], [0]]), np.array([[4], [0]]))[0] == 0.0
    assert cs.gac_pass_excluded(np.array([[3], [0]]), np.array([[1], [0]]))[0] == 0.0


def test_polarization_variants():
    out = cs.polarization(np.array([6, 0]), np.array([2, 0]), np.array([10, 0]))
    assert_allclose(out["pi"][0], 1 - abs(0.6 - 0.2))
    assert_allclose(out["pi_excl_pass"][0], 1 - abs(6 - 2) / 8)
    assert_allclose(out["pi_adjusted"][0], (1 - 0.4) * 8 / 10)
    assert np.isnan(out["pi"][1])


def test_select_repness_rules():
    # group 0 strongly agrees with statement 0 and disagrees with 1; the rest the opposite.
    agree = np.array([[40, 2, 10], [2, 40, 10]])
    disagree = np.array([[2, 40, 10], [40, 2, 10]])
    seen = np.array([[45, 45, 30], [45, 45, 30]])
    rows = cs.select_repness(agree, disagree, seen, np.array([True, True, True]))
    by_group = {
        g: [(r["col"], r["direction"], r["best_agree"]) for r in rows if r["group"] == g] for g in (0, 1)
    }
    assert by_group[0][0] == (0, "agree", True)
    assert (1, "disagree", False) in by_group[0]
    assert by_group[1][0] == (1, "agree", True)
    assert all(col != 2 for g in by_group for col, _, _ in by_group[g])
    # moderated-out statements are never selected
    rows = cs.select_repness(agree, disagree, seen, np.array([False, True, True]))
    assert all(r["col"] != 0 for r in rows)


def test_majority_consensus_and_uncertainty():
    agree, disagree, seen = np.array([90, 5, 20, 10]), np.array([5, 90, 20, 5]), np.array([100, 100, 100, 40])
    out = cs.majority_consensus(agree, disagree, seen, np.ones(4, bool))
    assert [j for j, _ in out["agree"]] == [0]
    assert [j for j, _ in out["disagree"]] == [1]
    uncertain = cs.uncertainty(agree, disagree, seen, np.ones(4, bool))
    assert [j for j, _ in uncertain] == [2, 3]  # 60 % vs 62.5 % passes; 0.36*60 > 0.39*25


def test_unknown_gac_variant_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown GAC variant"):
        cs.gac_variant_name("nope")
    assert cs.gac_variant_name("ccai") == "gac"
