"""Inputs that used to corrupt results silently, and degenerate inputs that must say so (issue 12, item 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ccai.analysis import analyze, select_by_gac
from ccai.cli import app
from ccai.formats.polis import PolisFormatError, read_polis_export

runner = CliRunner()


def _votes(n_people: int, n_statements: int, seed: int = 0, passes_only: bool = False) -> pd.DataFrame:
    """Two camps that disagree on odd statements and agree on even ones."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_people):
        camp = p % 2
        for s in range(n_statements):
            if passes_only:
                vote = 0
            elif s % 2 == 0:
                vote = 1 if rng.random() < 0.9 else -1
            else:
                vote = (1 if camp else -1) if rng.random() < 0.9 else 0
            rows.append((p, s, vote))
    return pd.DataFrame(rows, columns=["participant", "statement", "vote"])


def _statements(ids, moderated: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {"text": [f"statement {i}" for i in ids], "moderated": moderated, "is_meta": False},
        index=pd.Index(list(ids), name="statement"),
    )


def test_comments_cut_off_inside_a_quoted_field_is_an_error(tmp_path):
    # a real export, truncated in the middle of a comment body
    lines = ["comment-id,moderated,comment-body"]
    lines += [f'{i},{1 if i % 3 else -1},"comment number {i}, with a comma"' for i in range(40)]
    text = "\n".join(lines) + "\n"
    cut = text.index('"comment number 20') + 10
    (tmp_path / "comments.csv").write_text(text[:cut], encoding="utf-8")
    message = r"comments.csv line 22: a quoted field opened here is never closed"
    with pytest.raises(PolisFormatError, match=message):
        read_polis_export(tmp_path)


def test_unclosed_quote_in_the_middle_names_the_record(tmp_path):
    (tmp_path / "comments.csv").write_text(
        'comment-id,moderated,comment-body\n0,1,"ok"\n1,-1,"oops\n2,1,"next"\n', encoding="utf-8"
    )
    with pytest.raises(PolisFormatError, match=r"comments.csv line 4: malformed CSV .* starts on line 3"):
        read_polis_export(tmp_path)


def test_votes_on_unknown_statement_ids_never_become_eligible():
    votes = _votes(40, 10)
    statements = _statements(range(8))  # statements 8 and 9 are not in comments.csv
    result = analyze(votes, statements, groups=2)
    table = result.statements
    assert not table.loc[[8, 9], "eligible"].any()
    assert (table.loc[[8, 9], "status"] == "not in comments.csv").all()
    assert not set(select_by_gac(result, 0.0).index) & {8, 9}
    assert any("2 statement id(s) have votes" in w and "8, 9" in w for w in result.warnings)
    assert result.summary()["warnings"] == result.warnings
    # the same with the organisers' "accepted" moderation
    accepted = analyze(votes, statements, groups=2, moderation="accepted")
    assert {8, 9}.isdisjoint(accepted.eligible_statements().index)
    assert accepted.warnings and "missing from the statements table" in accepted.warnings[0]


def test_statements_without_votes_are_kept_not_eligible(tmp_path):
    votes = _votes(30, 6)
    statements = _statements(range(9))  # 6, 7, 8 have no vote
    result = analyze(votes, statements, groups=2)
    table = result.statements_csv().set_index("statement_id")
    assert list(table.index) == list(range(9))
    assert (table.loc[[6, 7, 8], "n_seen"] == 0).all()
    assert (table.loc[[6, 7, 8], "status"] == "no votes").all()
    assert table.loc[6, "text"] == "statement 6"
    assert result.summary()["counts"]["statements_without_votes"] == 3
    assert result.summary()["counts"]["statements_eligible"] == 6


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("all_moderated_out", "no statement is eligible"),
        ("all_pass", "every vote on an eligible statement is a pass"),
        ("two_participants", "only 2 participant(s) are in the groups"),
    ],
)
def test_degenerate_inputs_warn_in_result_cli_and_report(tmp_path, case, expected):
    n_people = 2 if case == "two_participants" else 30
    votes = _votes(n_people, 8, passes_only=case == "all_pass")
    statements = _statements(range(8), moderated=-1 if case == "all_moderated_out" else 1)
    result = analyze(votes, statements)
    assert any(expected in w for w in result.warnings), result.warnings
    # the CLI prints it and the report shows it
    folder = tmp_path / "export"
    folder.mkdir()
    pd.DataFrame(
        {
            "timestamp": np.arange(len(votes)) + 1_600_000_000_000,
            "datetime": "",
            "comment-id": votes["statement"],
            "voter-id": votes["participant"],
            "vote": votes["vote"],
        }
    ).to_csv(folder / "votes.csv", index=False)
    pd.DataFrame(
        {
            "comment-id": statements.index,
            "moderated": statements["moderated"],
            "comment-body": statements["text"],
        }
    ).to_csv(folder / "comments.csv", index=False)
    out = tmp_path / "run"
    cli = runner.invoke(app, ["analyze", str(folder), "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    flat = " ".join(cli.output.split())
    assert "warning" in flat and expected in flat
    report = (out / "report.html").read_text()
    assert expected in report.replace("&#39;", "'")
    assert " nan" not in flat


def test_hand_written_ari_and_matching_equal_the_libraries():
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import adjusted_rand_score

    from ccai.analysis.agreement import adjusted_rand, matched_share

    rng = np.random.default_rng(1)
    for ka, kb, n in ((2, 2, 50), (3, 5, 200), (1, 4, 30), (6, 6, 500), (9, 8, 300), (1, 1, 10)):
        a, b = rng.integers(0, ka, n), rng.integers(0, kb, n)
        b[: n // 2] = a[: n // 2] % kb  # some real agreement
        assert adjusted_rand(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
        table = np.zeros((ka, kb))
        np.add.at(table, (a, b), 1)
        rows, cols = linear_sum_assignment(-table)
        assert matched_share(a, b) == pytest.approx(table[rows, cols].sum() / n)
