"""report.html: every section is there, figures are embedded, participants' words are escaped."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ccai.analysis import CCAI_PAPER, analyze
from ccai.analysis.report import render_report, write_report

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
SECTIONS = [
    "participation",
    "map",
    "distributions",
    "groups-statements",
    "consensus",
    "uncertainty",
    "top",
    "statements",
    "filters",
    "clustering",
    "agreement",
    "provenance",
]


@pytest.fixture(scope="module")
def brexit_result(load_opendata):
    """A real conversation (brexit-consensus, 204 voters); the text of its top-GAC statement (listed in the
    report) is replaced by hostile HTML."""
    export = load_opendata("brexit-consensus")
    result = analyze(export.votes, export.statements, reference_groups=export.participants["group_id"])
    target = result.eligible_statements()["gac"].idxmax()
    result.statements.loc[target, "text"] = HOSTILE
    return result, target


def test_report_has_every_section_and_embedded_figures(brexit_result, tmp_path: Path) -> None:
    result, _ = brexit_result
    path = write_report(result, tmp_path / "out" / "report.html")
    html = path.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    assert 'id="paper"' not in html  # no paper given
    figures = re.findall(r'<svg class="fig"', html)
    assert len(figures) >= 4  # participant map, statement map, GAC and PI histograms
    assert "<img" not in html  # figures are inline SVG, nothing to fetch
    # offline: no external scripts, styles or images
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script src" not in html
    # hover text: every eligible statement on the map carries "#id: text" in a <title>
    stm = result.eligible_statements()
    shown = set(int(i) for i in re.findall(r"<title>#(\d+): ", html))
    assert shown == set(stm.index[stm["x"].notna()].tolist())
    # group names as Polis (A, B...), a filter box per group, both GAC variants named where shown
    for k in range(result.k):
        assert f"Group {chr(65 + k)}" in html and f'data-group="{k}"' in html
    assert "GAC (CCAI paper)" in html and "GAC (Polis)" in html
    # the full statement table lists every statement, the unvoted and moderated-out ones too
    table = html[html.index('id="all-statements"') : html.index("</tbody>")]
    assert table.count("<tr class=") == len(result.statements)
    # the numbers on the page are the result's
    assert f"{int(result.participants['in_analysis'].sum()):,} participants in {result.k} groups" in html
    assert (tmp_path / "out").is_dir() and not list((tmp_path / "out").glob("*.tmp"))


def test_statement_text_is_escaped(brexit_result) -> None:
    result, target = brexit_result
    html = render_report(result)
    assert html.count("<script>") == 1  # the report's own script, not the statement's
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("&lt;script&gt;") >= 1


def test_paper_table_and_label_warning(brexit_result, load_opendata) -> None:
    """Given labels that match nothing trigger the warning; a paper dict adds the side-by-side table."""
    result, _ = brexit_result
    export = load_opendata("brexit-consensus")
    part = export.participants
    rng = np.random.default_rng(0)
    shuffled = (
        part["group_id"].dropna().sample(frac=1, random_state=rng).set_axis(part["group_id"].dropna().index)
    )
    given = analyze(
        export.votes,
        export.statements,
        groups="given",
        given_groups=shuffled,
        reference_groups=part["group_id"],
    )
    html = render_report(given, paper=CCAI_PAPER, threshold=0.5)
    assert '<section id="paper">' in html and "Paper vs recomputed" in html
    assert "✗ differs" in html  # brexit is not the CCAI consultation
    assert "Check the given labels" in html
    assert "Check the given labels" not in render_report(result)


def test_broad_disagreement_lists_what_every_group_rejects(brexit_result) -> None:
    """Not the divisive statements: each one listed has a disagreeing majority in every group."""
    from ccai.analysis.report import _broad_disagreement

    result, _ = brexit_result
    rows = _broad_disagreement(result)
    for row in rows:
        assert all(g["disagree"] > 0.5 for g in row["groups"]), row
    stm = result.eligible_statements()
    divisive = stm[(stm["g0_agree"] / stm["g0_seen"] > 0.6) & (stm["g1_disagree"] / stm["g1_seen"] > 0.6)]
    assert not set(divisive.index) & {r["id"] for r in rows}


def test_conversation_identity_and_participation(load_opendata) -> None:
    export = load_opendata("brexit-consensus")
    result = analyze(export.votes, export.statements, about=export.summary)
    html = render_report(result)
    assert export.summary["topic"].strip() in html
    assert export.summary["url"].strip() in html
    part = result.participation
    assert part["participants"].iloc[-1] == export.votes["participant"].nunique()
    assert f"activity from {part.index.min():%Y-%m-%d} to {part.index.max():%Y-%m-%d}" in html
