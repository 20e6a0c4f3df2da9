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
    "map",
    "distributions",
    "groups-statements",
    "consensus",
    "uncertainty",
    "top",
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
    images = re.findall(r'<img class="fig" src="([^"]+)"', html)
    assert len(images) >= 2 + 1  # map, histograms, at least one group's bars
    assert all(src.startswith("data:image/png;base64,") for src in images)
    # offline: no external scripts, styles or images
    assert not re.search(r'(src|href)="(https?:)?//', html)
    # the figures are real PNGs
    import base64

    assert base64.b64decode(images[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # the numbers on the page are the result's
    assert f"{int(result.participants['in_analysis'].sum()):,} participants in {result.k} groups" in html
    assert (tmp_path / "out").is_dir() and not list((tmp_path / "out").glob("*.tmp"))


def test_statement_text_is_escaped(brexit_result) -> None:
    result, target = brexit_result
    html = render_report(result)
    assert "<script>" not in html and "<img src=x" not in html
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
