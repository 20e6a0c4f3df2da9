"""Selecting statements by GAC from the CCAI reference table and from an analysis statements.csv."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ccai.analysis.paper import CCAI_THRESHOLD
from ccai.constitution import ConstitutionError
from ccai.constitution.select import (
    read_statements,
    select_statements,
    threshold_for_count,
)


@pytest.fixture(scope="module")
def reference(shared_data: Path) -> pd.DataFrame:
    return read_statements(shared_data / "ccai" / "ccai_statement_reference.csv", group_labels="published")


def test_group_labelling_is_recorded_and_realigned_by_default(shared_data: Path) -> None:
    path = shared_data / "ccai" / "ccai_statement_reference.csv"
    default, published = read_statements(path), read_statements(path, group_labels="published")
    assert "realigned" in default.attrs["group_labelling"]
    assert "published" in published.attrs["group_labelling"]
    assert default.loc["0", "group_agree"] == {"0": round(104 / 116, 6), "1": round(84 / 91, 6)}
    assert default["gac"].tolist() == published["gac"].tolist()  # the selection stays the paper's
    with pytest.raises(ValueError, match="group_labels"):
        read_statements(path, group_labels="mine")


def test_empty_selection_is_an_error(shared_data: Path) -> None:
    table = read_statements(shared_data / "ccai" / "ccai_statement_reference.csv")
    with pytest.raises(ValueError, match="no statement has GAC >= 0.990"):
        select_statements(table, threshold=0.99)


def test_reference_table(reference: pd.DataFrame) -> None:
    assert len(reference) == 275
    first = reference.loc["0"]
    assert first["text"] == "The AI should be as helpful to the user as possible."
    assert (first["agree"], first["disagree"], first["pass"]) == (188, 12, 7)
    assert first["group_agree"] == {"0": round(102 / 115, 6), "1": round(86 / 92, 6)}
    # the paper's GAC is the product of the per-group agree rates
    assert first["gac"] == pytest.approx(first["group_agree"]["0"] * first["group_agree"]["1"], abs=1e-5)


def test_threshold_and_count(reference: pd.DataFrame) -> None:
    chosen = select_statements(reference, threshold=CCAI_THRESHOLD)
    assert len(chosen.statements) == int((reference["gac"] >= CCAI_THRESHOLD).sum()) == 116
    assert chosen.statements["gac"].is_monotonic_decreasing
    top = select_statements(reference, count=75)
    assert len(top.statements) >= 75
    assert top.threshold == threshold_for_count(reference, 75) > CCAI_THRESHOLD
    dropped = chosen.statements.index[:3].tolist()
    fewer = select_statements(reference, threshold=CCAI_THRESHOLD, exclude=dropped)
    assert len(fewer.statements) == 113 and not set(dropped) & set(fewer.statements.index)
    with pytest.raises(ValueError, match="exactly one"):
        select_statements(reference, threshold=0.5, count=3)
    with pytest.raises(ValueError, match="not in the table"):
        select_statements(reference, threshold=0.5, exclude=["99999"])
    with pytest.raises(ValueError, match="more than"):
        select_statements(reference, count=10_000)


def test_analysis_contract_gives_same_selection(reference: pd.DataFrame, tmp_path: Path) -> None:
    """An analysis statements.csv (n_agree, g<k>_agree/g<k>_seen, gac) feeds the same selection."""
    table = pd.DataFrame(
        {
            "statement_id": reference.index,
            "text": reference["text"].to_numpy(),
            "moderated": 1,
            "n_seen": (reference["agree"] + reference["disagree"] + reference["pass"]).to_numpy(),
            "n_agree": reference["agree"].to_numpy(),
            "n_disagree": reference["disagree"].to_numpy(),
            "n_pass": reference["pass"].to_numpy(),
            "gac": reference["gac"].to_numpy(),
            "gac_polis": 0.5,
            "g0_agree": [round(r["0"] * 1000) for r in reference["group_agree"]],
            "g0_seen": 1000,
            "g1_agree": [round(r["1"] * 1000) for r in reference["group_agree"]],
            "g1_seen": 1000,
        }
    )
    folder = tmp_path / "analysis"
    folder.mkdir()
    table.to_csv(folder / "statements.csv", index=False)
    from_analysis = read_statements(folder)
    a = select_statements(from_analysis, threshold=CCAI_THRESHOLD).statements
    b = select_statements(reference, threshold=CCAI_THRESHOLD).statements
    assert a.index.tolist() == b.index.tolist()
    assert a.loc["0", "group_agree"] == {"0": 0.887, "1": 0.935}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("text,gac\nx,0.5\n", "no statement_id column"),
        ("statement_id,text,agree,disagree,pass,gac\n1,a,1,0,0,0.5\n1,b,1,0,0,0.5\n", "appears twice"),
        (
            "statement_id,text,agree,disagree,pass,gac\n1,a,-3,0,0,0.5\n",
            r"line 2, column agree: expected a non-neg",
        ),
        ("statement_id,text,agree,disagree,pass,gac\n1,a,x,0,0,0.5\n", r"line 2, column agree"),
        ("statement_id,text,agree,disagree,pass,gac\n1,a,1,0,0,1.5\n", r"GAC values must lie in \[0, 1\]"),
        ("statement_id,text,agree,disagree,pass\n1,a,1,0,0\n", "no GAC column"),
    ],
)
def test_bad_tables_refused(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "statements.csv"
    path.write_text(content)
    with pytest.raises(ConstitutionError, match=expected):
        read_statements(path)


@pytest.mark.slow
def test_real_analysis_output_matches_reference(
    shared_data: Path, reference: pd.DataFrame, tmp_path: Path
) -> None:
    """`ccai.analysis` on the CCAI votes (published groups) -> statements.csv -> the same 116 statements."""
    analysis = pytest.importorskip("ccai.analysis")
    if not hasattr(analysis, "analyze"):
        pytest.skip("ccai.analysis.analyze not available")
    wide = pd.read_csv(shared_data / "ccai_polis" / "clean_votes.csv")
    columns = [c for c in wide.columns if c.isdigit()]
    votes = wide.melt(
        id_vars=["participant"], value_vars=columns, var_name="statement", value_name="vote"
    ).dropna()
    votes = votes.astype({"statement": int, "vote": int})
    texts = pd.DataFrame(
        {"text": reference["text"].to_numpy(), "moderated": 1}, index=reference.index.astype(int)
    )
    groups = wide.set_index("participant")["group-id"]
    result = analysis.analyze(votes, texts, groups="given", given_groups=groups, min_votes=0)
    result.to_dir(tmp_path)
    ours = select_statements(read_statements(tmp_path), threshold=CCAI_THRESHOLD).statements
    theirs = select_statements(reference, threshold=CCAI_THRESHOLD).statements
    assert ours.index.tolist() == theirs.index.tolist()
    assert ours["gac"].to_numpy() == pytest.approx(theirs["gac"].to_numpy(), abs=1e-6)
    assert ours["group_agree"].tolist() == theirs["group_agree"].tolist()
