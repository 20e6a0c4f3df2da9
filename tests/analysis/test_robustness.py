"""Selection certificates (bootstrap with re-clustering) and brigading margins (issue 12)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccai.analysis import analyze, select_by_gac
from ccai.analysis.robustness import brigading_margins, certify, selection_certificates, verify_margin


@pytest.fixture(scope="module")
def camps():
    """80 participants in two camps of 50 / 30 over 12 statements: 0-3 everyone agrees with (0: 95 %,
    3: ~72 %), 4-7 split the camps, 8-11 everyone rejects."""
    rng = np.random.default_rng(3)
    rows = []
    for p in range(80):
        camp = 0 if p < 50 else 1
        for s in range(12):
            if s < 4:
                agree_p = (0.95, 0.9, 0.85, 0.72)[s]
            elif s < 8:
                agree_p = 0.9 if camp == 0 else 0.1
            else:
                agree_p = 0.1
            vote = 1 if rng.random() < agree_p else -1
            rows.append((p, s, vote))
    votes = pd.DataFrame(rows, columns=["participant", "statement", "vote"])
    return votes, analyze(votes, groups="polis")


def test_certificates_are_seeded_and_sensible(camps):
    _, result = camps
    a = selection_certificates(result, threshold=0.5, n_boot=30, seed=1)
    b = selection_certificates(result, threshold=0.5, n_boot=30, seed=1)
    pd.testing.assert_series_equal(a.p_selected, b.p_selected)
    assert a.p_selected[0] == 1.0  # 95 % agreement in both camps: always selected
    assert (a.p_selected[[4, 5, 6, 7, 8, 9, 10, 11]] == 0.0).all()  # divisive or rejected: never
    assert sum(a.k_counts.values()) == 30
    top = selection_certificates(result, count=2, n_boot=30, seed=1)
    assert top.p_selected.sum() >= 2 * 0.99  # each resample selects at least two statements
    with pytest.raises(ValueError, match="exactly one selection rule"):
        selection_certificates(result, threshold=0.5, count=3)


def test_margins_are_the_fewest_bloc_members_with_groups_fixed(camps):
    _, result = camps
    t = 0.5
    margins = brigading_margins(result, threshold=t)
    stm = result.eligible_statements()
    for sid in stm.index:
        x = margins[sid]
        if pd.isna(x):
            continue
        x = int(x)
        selected = stm.loc[sid, "gac"] >= t

        def gac_with(bloc: int, g: int, sid=sid, selected=selected) -> float:
            value = 1.0
            for h in range(result.k):
                a, s = stm.loc[sid, f"g{h}_agree"], stm.loc[sid, f"g{h}_seen"]
                if h == g:
                    a, s = a + (0 if selected else bloc), s + bloc
                value *= a / s
            return value

        flipped = [(gac_with(x, g) >= t) != selected for g in range(result.k)]
        before = [(gac_with(x - 1, g) >= t) != selected for g in range(result.k)]
        assert any(flipped), sid
        assert not any(before), sid


def test_certify_fills_statements_summary_and_report(camps):
    votes, result = camps
    certify(result, threshold=0.5, n_boot=20, seed=0)
    assert {"p_selected", "brigade_margin"} <= set(result.statements.columns)
    summary = result.summary()["certificate"]
    assert summary["n_boot"] == 20 and summary["margin_min"] >= 1
    assert summary["margin_verified"] is not None and summary["margin_verified"] >= 1
    firm = select_by_gac(result, 0.5, min_certainty=0.9)
    assert set(firm.index) <= set(select_by_gac(result, 0.5).index)
    assert (firm["p_selected"] >= 0.9).all()
    from ccai.analysis.report import render_report

    html = render_report(result)
    assert 'id="robustness"' in html and "Brigading margin" in html


def test_min_certainty_without_certificates_is_a_clear_error(camps):
    votes, _ = camps
    fresh = analyze(votes)
    with pytest.raises(ValueError, match="needs selection certificates"):
        select_by_gac(fresh, 0.5, min_certainty=0.9)


def test_verified_margin_flips_the_statement_with_reclustering(camps):
    votes, _ = camps
    result = analyze(votes)
    margins = brigading_margins(result, threshold=0.5)
    stm = result.eligible_statements()
    sid = stm.loc[stm["gac"] >= 0.5, "gac"].idxmin()  # the weakest selected statement
    x = verify_margin(result, votes, None, sid, threshold=0.5, start=int(margins[sid]))
    assert x is not None and x >= 1

    def flips(size: int) -> bool:
        """Any group-copying bloc of ``size`` that disagrees with sid pushes it out (full re-analysis)."""
        for g in range(result.k):
            profile = np.sign(stm[f"g{g}_agree"] - stm[f"g{g}_disagree"]).astype(int)
            profile[sid] = -1
            bloc = pd.DataFrame(
                {
                    "participant": np.repeat(np.arange(1000, 1000 + size), len(profile)),
                    "statement": np.tile(profile.index.to_numpy(), size),
                    "vote": np.tile(profile.to_numpy(), size),
                }
            )
            again = analyze(pd.concat([votes, bloc], ignore_index=True))
            if again.statements.loc[sid, "gac"] < 0.5:
                return True
        return False

    assert flips(x)
    assert x == 1 or not flips(x - 1)


def test_cli_certificates_reach_statements_csv_summary_and_report(shared_data, tmp_path):
    import json

    from typer.testing import CliRunner

    from ccai.cli import app

    folder = shared_data / "polis-opendata" / "brexit-consensus"
    out = tmp_path / "run"
    runner = CliRunner()
    done = runner.invoke(
        app, ["analyze", str(folder), "--out", str(out), "--certificates", "20", "--threshold", "0.5"]
    )
    assert done.exit_code == 0, done.output
    table = pd.read_csv(out / "statements.csv")
    assert table.loc[table["status"] == "eligible", "p_selected"].between(0, 1).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["certificate"]["n_boot"] == 20 and summary["certificate"]["threshold"] == 0.5
    assert 'id="robustness"' in (out / "report.html").read_text()
    assert "brigading margin" in " ".join(done.output.split())
    bad = runner.invoke(
        app, ["analyze", str(folder), "--out", str(tmp_path / "x"), "--lm", "openai:http://127.0.0.1:9"]
    )
    assert bad.exit_code == 2 and "model name" in bad.output and not (tmp_path / "x").exists()
