"""The judging report's win-rate table on a phone: read without swiping it sideways (~2 s, no server).

The page is rendered from its template with a report shaped as ``judging_report.build`` returns it (two
groups, long outcome texts) and opened in chromium from a file, with the app's own style sheet. At 390 px
each row is a card; at 1280 px it stays a table; either way a screen reader still finds a table with its
column and row headers. Screenshots go to ``$CCAI_TEST_ARTEFACTS`` (default: a temporary folder).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ccai.consultation.judging_report import JudgingReport
from ccai.consultation.web import i18n
from ccai.consultation.web.pages import templates

pytestmark = pytest.mark.browser
STATIC = Path(__file__).resolve().parents[2] / "src" / "ccai" / "consultation" / "web" / "static"
# no table on the page may be wider than its frame (a frame scrolling sideways is what readers saw)
OVERFLOWING = (
    "[...document.querySelectorAll('table')].filter(t => t.scrollWidth > t.clientWidth + 1 || "
    "t.parentElement.scrollWidth > t.parentElement.clientWidth + 1).map(t => t.id || t.className)"
)


def _pair(a: str, b: str, group: str, wins: int, losses: int, n: int) -> dict:
    rate = (wins + 0.5 * (n - wins - losses)) / n
    return {
        "a": a,
        "b": b,
        "group": group,
        "n": n,
        "a_wins": wins,
        "b_wins": losses,
        "both_fine": n - wins - losses - 1,
        "both_bad": 1,
        "win_rate": rate,
        "low": max(0.0, rate - 0.2),
        "high": min(1.0, rate + 0.2),
    }


def _page(tmp_path: Path) -> Path:
    models = ["base", "ccai-public-constitution", "ccai-standard-constitution"]
    pairs = [
        _pair(a, b, group, wins, losses, 48)
        for a, b in (models[:2], models[::2])
        for group, wins, losses in (("all", 20, 22), ("0", 20, 2), ("1", 0, 20), ("none", 0, 0))
    ]
    report = JudgingReport(
        models=models,
        judgments=96,
        people=16,
        pairs=pairs,
        ratings={m: {"elo": 10.0 * k, "low": -20.0, "high": 30.0} for k, m in enumerate(models)},
        left_share={"share": 0.52, "low": 0.42, "high": 0.61, "n": 96},
        ai_agreement=[{"group": "all", "agreement": 0.5, "low": 0.3, "high": 0.7, "n": 48}],
        judge="openai:http://127.0.0.1:8000/v1#base",
        group_names=["0", "1"],
    )
    html = templates.get_template("judging_report.html").render(
        lang="en",
        languages=i18n.languages(),
        t=lambda key, **v: i18n.translate("en", key, **v),
        user=None,
        csrf="",
        here="/c/1/report/judging",
        conversation=SimpleNamespace(id=1, topic="How should an AI assistant answer?"),
        live=SimpleNamespace(status="ready"),
        report=report,
        constitution=None,
        principle_groups=[],
        principles=[],
        adherence=None,
        adherence_match="none",
    )
    path = tmp_path / "judging.html"
    path.write_text(html.replace('href="/static/style.css"', f'href="{(STATIC / "style.css").as_uri()}"'))
    return path


def test_win_rate_table_is_cards_on_a_phone_and_a_table_on_a_desktop(tmp_path, browser, shots):
    url = _page(tmp_path).as_uri()
    for width in (390, 1280):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.route("**/static/*.js", lambda route: route.abort())  # scripts: not needed to lay it out
        page.goto(url)
        assert page.evaluate(OVERFLOWING) == [], width
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        table = page.get_by_role("table", name="Win rates")
        assert table.get_by_role("columnheader").count() == 5
        assert table.get_by_role("rowheader").count() == 8
        first = table.locator("tbody tr").first
        cells = first.locator("td")
        # the value alone in the cell's text (the phone's label is generated content, not text)
        assert cells.nth(1).inner_text() == "48 %"
        display = first.evaluate("r => getComputedStyle(r).display")
        assert display == ("block" if width == 390 else "table-row")
        if width == 390:  # the label is on screen, left of the value
            label = cells.nth(1).evaluate("c => getComputedStyle(c, '::before').content")
            assert label == '"First model wins"'
        page.screenshot(path=str(shots / f"judging-report-layout-{width}.png"), full_page=True)
        page.close()
