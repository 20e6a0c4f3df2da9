"""The output contract (files and columns), determinism, and the selection helpers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ccai.analysis import analyze, select_by_gac, threshold_for_count

STATEMENT_COLUMNS = [
    "statement_id",
    "text",
    "moderated",
    "n_seen",
    "n_agree",
    "n_disagree",
    "n_pass",
    "gac",
    "gac_polis",
    "gac_pass_excluded",
    "gac_jeffreys",
    "pi",
    "pi_excl_pass",
    "pi_adjusted",
    "extremity",
    "x",
    "y",
    "priority",
]


@pytest.fixture(scope="module")
def bg2050(load_opendata):
    return load_opendata("bg2050-volunteers")


@pytest.fixture(scope="module")
def result(bg2050):
    return analyze(bg2050.votes, bg2050.statements, reference_groups=bg2050.participants["group_id"])


def test_to_dir_writes_the_output_contract(result, tmp_path):
    result.to_dir(tmp_path)
    statements = pd.read_csv(tmp_path / "statements.csv")
    assert list(statements.columns[: len(STATEMENT_COLUMNS)]) == STATEMENT_COLUMNS
    for k in range(result.k):
        assert {f"g{k}_agree", f"g{k}_disagree", f"g{k}_pass", f"g{k}_seen"} <= set(statements.columns)
    assert len(statements) == 371
    participants = pd.read_csv(tmp_path / "participants.csv")
    assert list(participants.columns[:6]) == ["participant_id", "n_votes", "in_analysis", "group", "x", "y"]
    assert participants["in_analysis"].sum() == sum(result.group_sizes().values())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["k"] == result.k and summary["seed"] == 0 and len(summary["input_hash"]) == 64
    assert summary["group_sizes"] == result.group_sizes() and len(summary["group_votes"]) == result.k
    assert sum(summary["group_votes"].values()) == summary["counts"]["votes_in_analysis"]
    assert set(summary["gac"]) == {"gac", "gac_polis", "gac_pass_excluded", "gac_jeffreys"}
    assert {"mean", "median", "min", "max"} == set(summary["gac"]["gac"])
    assert summary["ccai_clustering"]["silhouettes"]
    assert [f["name"] for f in summary["filters"]] == ["moderated_out", "min_votes"]
    assert summary["version"]
    assert not list(tmp_path.glob("*.tmp"))


def test_same_seed_same_files(bg2050, tmp_path):
    for run in ("a", "b"):
        analyze(bg2050.votes, bg2050.statements, seed=7).to_dir(tmp_path / run)
    for name in ("statements.csv", "participants.csv", "summary.json", "repness.csv", "agreement.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_moderated_out_statements_are_zeroed_not_counted(result, bg2050):
    out = bg2050.statements.index[bg2050.statements["moderated"] == -1]
    table = result.statements
    rejected = table.index.intersection(out)
    assert len(rejected) > 0
    assert not table.loc[rejected, "eligible"].any()
    assert (table.loc[rejected, "extremity"] == 0).all()
    assert not set(result.repness["statement_id"]) & set(rejected)
    assert not set(select_by_gac(result, 0.0).index) & set(rejected)


def test_selection_helpers(result):
    t = threshold_for_count(result, 10, "gac_polis")
    chosen = select_by_gac(result, t, "polis")
    assert len(chosen) >= 10 and chosen["gac_polis"].is_monotonic_decreasing
    assert (chosen["gac_polis"] >= t).all()
    assert len(select_by_gac(result, 1.01)) == 0
    with pytest.raises(ValueError, match="only"):
        threshold_for_count(result, 10_000)


def test_repness_and_consensus_are_present(result):
    assert set(result.repness["group"]) == set(result.group_names)
    assert result.repness.groupby("group").size().max() <= 5
    assert result.consensus["agree"]
    ids = set(result.statements.index)
    assert {s for s, _ in result.consensus["agree"]} <= ids


def test_bad_arguments_are_clear_errors(bg2050):
    with pytest.raises(ValueError, match="groups"):
        analyze(bg2050.votes, groups="seven")
    with pytest.raises(ValueError, match="given_groups"):
        analyze(bg2050.votes, groups="given")
    with pytest.raises(ValueError, match="moderated"):
        analyze(bg2050.votes, moderation="accepted")
    with pytest.raises(ValueError, match="no votes are left"):
        analyze(bg2050.votes, more_than=10_000)
    with pytest.raises(ValueError, match="min_votes: expected a whole number >= 0"):
        analyze(bg2050.votes, min_votes=-1)
    with pytest.raises(ValueError, match="unknown argument"):
        analyze(bg2050.votes, colour="red")


def test_filters_report_what_they_removed(bg2050):
    counts = bg2050.votes.groupby("participant").size()
    result = analyze(
        bg2050.votes, bg2050.statements, exclude=[0, 1, 999_999], more_than=20, straightliners=True
    )
    steps = {step.name: step for step in result.filters}
    assert steps["exclude"].removed_participants == [0, 1]
    assert set(steps["more_than"].removed_participants) == set(counts[counts <= 20].index) - {0, 1}
    removed = result.participants.loc[result.participants["removed_by"] != "", "removed_by"]
    assert set(removed) <= {"exclude", "more_than", "straightliners"}
    assert not result.participants.loc[removed.index, "in_analysis"].any()
    liners = steps["straightliners"].removed_participants
    for pid in liners:
        assert bg2050.votes.loc[bg2050.votes["participant"] == pid, "vote"].nunique() == 1


def test_estimator_follows_the_scikit_learn_contract(bg2050):
    from sklearn.base import clone

    from ccai.analysis import OpinionAnalysis

    estimator = OpinionAnalysis(groups=2, seed=4)
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and not hasattr(copy, "result_")
    assert estimator.fit(bg2050.votes, bg2050.statements) is estimator
    assert estimator.result_.k == 2
    with pytest.raises(ValueError, match="unknown parameter"):
        estimator.set_params(colour="red")


def test_save_writes_a_run_directory(result, tmp_path):
    run = result.save(tmp_path / "run", config={"note": "test"})
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["stage"] == "analysis" and manifest["k"] == result.k
    assert "statements.csv" in manifest["outputs"] and (run.path / "config.yaml").read_text().startswith(
        "note"
    )


def test_a_labeling_without_labels_is_not_compared(bg2050):
    """An export without group-id (all NA) gives no meaningless NaN agreement row."""
    unlabelled = bg2050.participants["group_id"].astype("Int64") * pd.NA
    result = analyze(bg2050.votes, reference_groups=unlabelled, labelings={"empty": unlabelled})
    assert result.agreement.empty
    assert result.participants["polis_group"].isna().all()
