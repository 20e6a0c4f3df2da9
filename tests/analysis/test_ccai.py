"""Golden tests: the CCAI consultation (Huang et al. 2024) recomputed from its public Pol.is export."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ccai.analysis import CCAI_PAPER, CCAI_REALIGNED, analyze
from ccai.analysis.paper import paper_figures, paper_table


@pytest.fixture(scope="module")
def published(ccai_clean):
    """The organisers' analysis: clean_votes.csv with its own (published) group-id."""
    return analyze(
        ccai_clean.votes,
        ccai_clean.statements,
        groups="given",
        given_groups=ccai_clean.participants["group_id"],
    )


@pytest.fixture(scope="module")
def realigned(ccai_clean, ccai_groups, ccai_raw):
    return analyze(
        ccai_clean.votes,
        ccai_clean.statements,
        groups="given",
        given_groups=ccai_groups["group_realigned"],
        reference_groups=ccai_raw.participants["group_id"],
        labelings={"published": ccai_clean.participants["group_id"]},
    )


def test_paper_figures_with_published_groups(published):
    got = paper_figures(published)
    for key in ("n_statements", "n_participants", "group_0_size", "group_1_size", "n_above_threshold"):
        assert got[key] == CCAI_PAPER[key], key
    for key in ("gac_mean", "gac_median", "gac_min", "gac_max"):
        assert round(got[key], 2) == CCAI_PAPER[key], key
    assert round(got["pi_median"], 2) == CCAI_PAPER["pi_median"]
    assert round(got["pi_adjusted_median"], 2) == CCAI_PAPER["pi_adjusted_median"]
    assert list(paper_table(published)["figure"]) == list(CCAI_PAPER)


def test_per_statement_values_equal_the_reference_table(published, realigned, ccai_reference):
    ref = ccai_reference
    for result, prefix, gac in (
        (published, "pub", "gac_published_groups"),
        (realigned, "fix", "gac_correct_groups"),
    ):
        table = result.statements.reindex(ref.index)
        assert table.index.equals(ref.index) and table["n_seen"].notna().all()
        assert (table["n_agree"] == ref["agree"]).all()
        assert (table["n_disagree"] == ref["disagree"]).all()
        assert (table["n_pass"] == ref["pass"]).all()
        for g in (0, 1):
            for what in ("agree", "disagree", "pass"):
                assert (table[f"g{g}_{what}"] == ref[f"{prefix}_g{g}_{what}"]).all(), (prefix, g, what)
        assert_allclose(table["gac"], ref[gac], rtol=1e-9)
        assert_allclose(table["pi"], ref["pi"], rtol=1e-9)
        assert_allclose(table["pi_adjusted"], ref["pi_adjusted"], rtol=1e-9)


def test_realigned_figures_and_the_mislabelling_is_caught(realigned):
    gac = realigned.gac_summary("gac")
    assert round(gac["mean"], 3) == CCAI_REALIGNED["gac_mean"]
    assert round(gac["median"], 3) == CCAI_REALIGNED["gac_median"]
    assert round(gac["min"], 3) == CCAI_REALIGNED["gac_min"]
    assert round(gac["max"], 3) == CCAI_REALIGNED["gac_max"]
    assert paper_figures(realigned)["n_above_threshold"] == CCAI_REALIGNED["n_above_threshold"]
    pairs = realigned.agreement.set_index(["a", "b"])
    assert pairs.loc[("given", "polis"), "matched_share"] == pytest.approx(
        CCAI_REALIGNED["matched_share_vs_polis"], abs=5e-4
    )
    assert abs(pairs.loc[("polis", "published"), "ari"]) < 0.02  # the published labels: chance level
    assert abs(pairs.loc[("given", "published"), "ari"]) < 0.02


def test_own_clustering_from_the_raw_export_with_the_organisers_rules(ccai_raw, ccai_toss, ccai_groups):
    result = analyze(
        ccai_raw.votes,
        ccai_raw.statements,
        exclude=ccai_toss,
        more_than=25,
        moderation="accepted",
        groups=2,
        reference_groups=ccai_raw.participants["group_id"],
        labelings={"published": ccai_groups["group_published"], "realigned": ccai_groups["group_realigned"]},
    )
    assert result.matrix.shape == (1002, 275)
    assert set(result.participants.index[result.participants.in_analysis]) == set(ccai_groups.index)
    pairs = result.agreement.set_index(["a", "b"])
    assert len(pairs) == 6  # every pair of polis, published, realigned, ccai
    # ccai with k = 2 finds Polis's own groups (docs/analysis.md): ARI 0.925, 98.1 % matched
    assert pairs.loc[("polis", "ccai"), "ari"] == pytest.approx(0.925, abs=0.005)
    assert pairs.loc[("polis", "ccai"), "matched_share"] == pytest.approx(0.981, abs=0.0005)
    assert pairs.loc[("realigned", "ccai"), "ari"] == pytest.approx(0.708, abs=0.005)
    assert abs(pairs.loc[("published", "ccai"), "ari"]) < 0.02
    steps = {step.name: step for step in result.filters}
    assert len(steps["exclude"].removed_participants) == 37
    assert len(steps["not_accepted"].removed_statements) == 1418 - 275 - _unvoted(ccai_raw)


def _unvoted(export) -> int:
    voted = set(np.unique(export.votes["statement"]))
    return sum(1 for s in export.statements.index if s not in voted)


def test_polis_grouped_set_is_reproduced_on_the_raw_export(ccai_raw):
    result = analyze(ccai_raw.votes, ccai_raw.statements, reference_groups=ccai_raw.participants["group_id"])
    clustered = set(result.participants.index[result.participants.clustered])
    assert clustered == set(ccai_raw.participants["group_id"].dropna().index)
    assert len(clustered) == 1094
