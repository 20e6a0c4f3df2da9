"""The study's index.html, built from stage files shaped like the real ones (training: the recorded run in
docs/runs/train-all-64), so each test can fail on a wrong figure, a missing stage, unescaped text, bad HTML.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from html import unescape
from pathlib import Path

import html5lib
import pytest
import yaml

from ccai.study_report import StudyReportError, gac_histogram, study_context, table_one, write_study_report

RECORDED_RUNS = Path(__file__).resolve().parents[2] / "docs" / "runs" / "train-all-64"
# the tables (by caption) whose frame scrolls sideways: what a phone reader would have to swipe
OVERFLOWING_TABLES = (
    "[...document.querySelectorAll('table')].filter(t => t.scrollWidth > t.clientWidth + 1 || "
    "t.parentElement.scrollWidth > t.parentElement.clientWidth + 1).map(t => t.caption?.textContent)"
)

RESULTS = {
    "models": [
        {"label": "base", "spec": "smollm2", "identity": "smollm2"},
        {"label": "public", "spec": "training/public/rl/model", "identity": "p"},
        {"label": "ccai-standard", "spec": "training/ccai-standard/rl/model", "identity": "s"},
    ],
    "seed": 0,
    "limit": 40,
    "tasks": ["mmlu", "bbq", "helpfulness"],
    "rows": [
        {"key": "mmlu.accuracy", "label": "MMLU accuracy % (micro)", "higher_is_better": True},
        {"key": "bbq.bias_ambig", "label": "BBQ bias score (ambiguous)", "higher_is_better": False},
        {
            "key": "safety.hh_refusal",
            "label": "HH red-team prompts: refuse or reframe %",
            "higher_is_better": None,
        },
    ],
    "measures": {
        "mmlu.accuracy": {
            "base": {"value": 25.0, "low": 20.0, "high": 30.0, "n": 40},
            "public": {"value": 30.0, "low": 26.0, "high": 34.0, "n": 40},
            "ccai-standard": {"value": 40.0, "low": 35.5, "high": 44.5, "n": 40},
        },
        "bbq.bias_ambig": {
            "base": {"value": 5.0, "low": 1.0, "high": 9.0, "n": 40},
            "public": {"value": 2.0, "low": -1.0, "high": 5.0, "n": 40},
            "ccai-standard": {"value": 7.5, "low": 3.0, "high": 11.0, "n": 40},
        },
        "safety.hh_refusal": {
            "base": {"value": 10.0, "low": 5.0, "high": 15.0, "n": 40},
            "public": {"value": 10.0, "low": 5.0, "high": 15.0, "n": 40},
        },
    },
    "details": {
        "helpfulness": {
            "ratings": {
                "base": {"elo": 0.0, "low": 0.0, "high": 0.0, "plus_minus": 0.0},
                "public": {"elo": -12.5, "low": -30.0, "high": 5.0, "plus_minus": 17.5},
                "ccai-standard": {"elo": 20.0, "low": 4.0, "high": 36.0, "plus_minus": 16.0},
            },
            "n_prompts": 40,
        }
    },
    "skipped": {"ccai-standard": {"safety": "server gives no log-probabilities"}},
}


def _principle(
    pid: str,
    text: str,
    sources: list[tuple[str, str, float]],
    merge: dict | None = None,
    tags: tuple[str, ...] = ("promotes-desired",),
) -> dict:
    return {
        "id": pid,
        "comparison": f"Choose the response that {text}",
        "critique_request": "Identify ...",
        "revision_request": "Please rewrite ...",
        "tags": list(tags),
        "sources": [
            {"kind": "statement", "id": sid, "text": stext, "gac": gac} for sid, stext, gac in sources
        ],
        "metadata": {
            "rewrite": {"rule": "be-adjective", "by": "rules"},
            **({"merge": merge} if merge else {}),
        },
    }


def _analysis(out: Path, gacs: dict[str, float]) -> None:
    folder = out / "analysis"
    folder.mkdir(parents=True)
    summary = {
        "group_source": "ccai",
        "counts": {
            "participants_input": 1126,
            "participants_in_analysis": 1002,
            "votes_in_analysis": 34563,
            "statements_eligible": len(gacs),
        },
        "k": 2,
        "group_sizes": {"0": 650, "1": 352},
        "gac": {"gac": {"median": 0.68}},
        "gac_above_paper_threshold": {"threshold": 0.723, "count": sum(g >= 0.723 for g in gacs.values())},
        "filters": [
            {
                "name": "more_than",
                "description": "participants with 25 votes or fewer",
                "participants_removed": 87,
                "statements_removed": 0,
            }
        ],
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    with open(folder / "statements.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["statement_id", "text", "gac", "eligible"])
        for sid, gac in gacs.items():
            writer.writerow([sid, f"statement {sid}", gac, "True"])
    (folder / "report.html").write_text("<!doctype html><title>analysis</title>")


def _constitution(out: Path, principles: list[dict], reviewed: bool = False) -> None:
    folder = out / "constitution"
    folder.mkdir(parents=True)
    public = {
        "format": "ccai-constitution",
        "name": "public",
        "version": "1.0.0",
        "description": "Built from 4 statements with group-aware consensus >= 0.723.",
        "principles": principles,
        "metadata": {
            "selection": {"threshold": 0.723, "count": None, "considered": 6},
            "merge": {"similarity": 0.6, "reviewed": reviewed},
            "rewriter": "rules",
        },
        "content_hash": "ab" * 32,
    }
    (folder / "public.json").write_text(json.dumps(public))
    standard = {"name": "standard", "principles": [_principle(f"c{i}", "is kind.", []) for i in range(5)]}
    (folder / "standard.json").write_text(json.dumps(standard))
    (folder / "compare_standard.html").write_text("<!doctype html><title>compare</title>")


def _study(
    tmp_path: Path,
    stages: tuple[str, ...] = ("analysis", "constitution", "training", "evaluation"),
    principles: list[dict] | None = None,
) -> Path:
    out = tmp_path / "study"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "stages": list(stages)}))
    gacs = {"1": 0.95, "2": 0.80, "3": 0.74, "4": 0.75, "5": 0.40, "6": 1.0, "7": 0.0}
    if "analysis" in stages:
        _analysis(out, gacs)
    if "constitution" in stages:
        _constitution(
            out,
            principles
            or [
                _principle(
                    "s1",
                    "is most honest.",
                    [("1", "The AI should be honest", 0.95), ("4", "The AI should not lie", 0.75)],
                    merge={"id": "m001", "members": ["1", "4"], "similarity": 0.71, "reviewed": False},
                ),
                _principle(
                    "s2",
                    "is most reliable.",
                    [("2", "The AI should be reliable", 0.80)],
                    tags=("promotes-desired", "inspired-by-standard"),
                ),
                _principle("s6", "is least harmful.", [("6", "The AI should not harm", 1.0)]),
            ],
        )
    if "training" in stages:
        for name in ("ccai-public", "ccai-standard"):
            shutil.copytree(RECORDED_RUNS / name, out / "training" / name.replace("ccai-public", "public"))
    if "evaluation" in stages:
        (out / "evaluation").mkdir()
        (out / "evaluation" / "results.json").write_text(json.dumps(RESULTS))
        (out / "evaluation" / "report.html").write_text("<!doctype html><title>evaluation</title>")
    return out


def _html_errors(text: str) -> list:
    parser = html5lib.HTMLParser(strict=False)
    parser.parse(text)
    return parser.errors


def _cell_text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_table_one_keeps_the_evaluations_model_order_and_computes_deltas():
    table = table_one(RESULTS)
    assert table["labels"] == ["base", "public", "ccai-standard"]  # as results.json lists them
    rows = {row["label"]: row["cells"] for row in table["rows"]}
    mmlu = rows["MMLU accuracy % (micro)"]
    assert [c["value"] for c in mmlu] == ["25.0", "30.0", "40.0"]
    assert mmlu[0]["delta"] == ""  # no delta for the reference (first) model itself
    assert mmlu[2]["delta"] == "+15.0" and mmlu[2]["verdict"] == "better, intervals apart"
    assert mmlu[1]["delta"] == "+5.0" and mmlu[1]["verdict"] == "better, intervals overlap"
    assert mmlu[2]["interval"] == "[35.5, 44.5]"
    bias = rows["BBQ bias score (ambiguous)"]  # lower is better: a drop is "better"
    assert bias[1]["delta"] == "−3.0" and bias[1]["verdict"].startswith("better")
    assert bias[2]["delta"] == "+2.5"
    assert bias[2]["verdict"].startswith("worse")
    refusal = rows["HH red-team prompts: refuse or reframe %"]  # no better direction, and a model without it
    assert refusal[1]["delta"] == "±0" and "better" not in refusal[1]["verdict"]
    assert refusal[2]["value"] == "–" and refusal[2]["delta"] == ""
    elo = rows["Helpfulness Elo (pairwise, judged by a model)"]
    assert elo[2]["delta"] == "+20.0" and elo[2]["verdict"] == "better, intervals apart"
    assert elo[1]["delta"] == "−12.5" and elo[1]["verdict"] == "worse, intervals overlap"
    # another order in the data is another order on the page: nothing is sorted by name
    swapped = {**RESULTS, "models": [RESULTS["models"][0], RESULTS["models"][2], RESULTS["models"][1]]}
    assert table_one(swapped)["labels"] == ["base", "ccai-standard", "public"]
    assert table["skipped"] == ["ccai-standard / safety: server gives no log-probabilities"]


def test_whole_study_page_shows_every_stage(tmp_path):
    out = _study(tmp_path)
    (out / "index.html").write_text("old page")
    path = write_study_report(out)
    html = path.read_text()
    assert path == out / "index.html" and _html_errors(html) == []
    assert "did not run" not in html
    text = _cell_text(html)
    # Table 1 with the deltas, in the page itself
    assert "40.0 [35.5, 44.5] Δ +15.0 (better, intervals apart)" in text
    # analysis headline: participants, groups, histogram with threshold, statements selected
    assert "1,002" in text and "650" in text and "352" in text
    assert 'role="img"' in html and "threshold 0.723" in html
    assert "4 statements were selected (GAC ≥ 0.723, the CCAI organisers' threshold)" in text
    # constitution: principles, merges, review status, overlap
    assert "Choose the response that is most honest." in html
    assert "Not reviewed by a person" in html and "The 1 merge" in html
    assert "33% overlap with the standard constitution (1 of 3)" in text
    # training from the recorded 64-prompt run: counts, filtering, loss chart, time per step
    context = study_context(out)
    public = next(r for r in context["training"]["runs"] if r["name"] == "public")
    assert dict(public["counts"])["red-team prompts trained on"] == "64"
    assert dict(public["counts"])["SL-CAI rows generated (prompt, critique, revision)"] == "80"
    sl = next(p for p in public["phases"] if p["key"] == "sl")
    metrics = [json.loads(line) for line in (RECORDED_RUNS / "ccai-public" / "metrics.jsonl").open()]
    runtime = next(m["train_runtime"] for m in metrics if m["stage"] == "sl" and "train_runtime" in m)
    assert sl["steps"] == "20" and sl["per_step"] == f"{runtime / 20:.2f}"
    chart = next(c for c in context["training"]["charts"] if c["id"] == "loss-sl")
    sl_points = [m for m in metrics if m["stage"] == "sl" and "loss" in m]
    assert len(next(s for s in chart["series"] if s["name"] == "public")["polyline"].split()) == len(
        sl_points
    )
    assert any("held out for evaluation" in f for f in context["training"]["filtered_common"])
    assert "sl_model_card.md" in html and "evaluation/report.html" in html and "analysis/report.html" in html
    assert "what a 135M-parameter model can and cannot show" in html


def test_two_stage_study_says_what_did_not_run(tmp_path):
    out = _study(tmp_path, stages=("analysis", "constitution"))
    html = write_study_report(out).read_text()
    assert _html_errors(html) == []
    assert html.count("did not run (not among this study") >= 2  # training and evaluation
    assert "Table 1: measures by model" not in html
    assert "Loss per step" not in html
    (out / "config.yaml").unlink()  # without the study config: still says it, without the reason
    (out / "evaluation").mkdir()  # a stage that started and left no results
    context = study_context(out)
    states = {s["stage"]: s["state"] for s in context["status"]}
    assert states == {
        "analysis": "ran",
        "constitution": "ran",
        "training": "missing",
        "evaluation": "incomplete",
    }


def test_analysis_only_histogram_uses_the_paper_threshold(tmp_path):
    out = _study(tmp_path, stages=("analysis",))
    context = study_context(out)
    histogram = context["analysis"]["histogram"]
    assert histogram["total"] == 7 and histogram["kept"] == 0 and not histogram["has_selection"]
    assert histogram["threshold"]["label"] == "threshold 0.723"
    html = write_study_report(out).read_text()
    assert "reach the CCAI organisers' threshold" in html and _html_errors(html) == []


def test_hostile_text_is_escaped(tmp_path):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quoted"'
    out = _study(
        tmp_path,
        stages=("analysis", "constitution"),
        principles=[
            _principle(
                "s1",
                hostile,
                [("1", hostile, 0.95)],
                merge={"id": "<b>m</b>", "members": ["1"], "similarity": 0.7, "reviewed": False},
            ),
        ],
    )
    html = write_study_report(out).read_text()
    assert "<script>" not in html and "<img" not in html and "<b>m</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert _html_errors(html) == []


def test_gac_histogram_counts():
    histogram = gac_histogram([(0.0, False), (0.049, False), (0.05, True), (1.0, True), (0.999, False)], 0.5)
    bars = histogram["bars"]
    assert len(bars) == 20 and histogram["total"] == 5 and histogram["kept"] == 2
    assert (bars[0]["other"], bars[1]["kept"], bars[19]["kept"], bars[19]["other"]) == (2, 1, 1, 1)
    assert histogram["threshold"]["x"] == round((histogram["left"] + histogram["right"]) / 2, 1)


def test_unreadable_stage_file_names_it_and_keeps_the_old_page(tmp_path):
    out = _study(tmp_path, stages=("analysis", "constitution"))
    (out / "index.html").write_text("old page")
    (out / "constitution" / "public.json").write_text('{"principles": [\n  {"id": 1,}\n]}')
    with pytest.raises(StudyReportError, match=r"constitution/public\.json:2"):
        write_study_report(out)
    (out / "constitution" / "public.json").unlink()
    with open(out / "analysis" / "statements.csv", "a") as handle:
        handle.write("9,bad,1.7,True\n")
    with pytest.raises(StudyReportError, match=r"statements\.csv:9: gac"):
        write_study_report(out)
    assert (out / "index.html").read_text() == "old page"
    with pytest.raises(FileNotFoundError, match="study folder not found"):
        write_study_report(tmp_path / "nowhere")


@pytest.mark.slow
def test_page_of_a_real_two_stage_study(tmp_path, shared_data):
    """~50 s on a busy 2-core machine: analysis and constitution on a real conversation, then the page
    read from what they wrote."""
    from ccai.config import load_config
    from ccai.pipeline import StudyConfig, run_study

    config = load_config(
        StudyConfig,
        None,
        [
            f"analysis.export={shared_data / 'polis-opendata' / 'brexit-consensus'}",
            "analysis.exclude=null",
            "analysis.more_than=0",
            "analysis.moderation=polis",
            "analysis.groups=polis",
            "constitution.threshold=null",
            "constitution.count=8",
            "stages=[analysis,constitution]",
        ],
    )
    out = run_study(config, tmp_path / "study", progress=False).path
    html = write_study_report(out).read_text()
    assert _html_errors(html) == []
    public = json.loads((out / "constitution" / "public.json").read_text())
    context = study_context(out)
    assert context["constitution"]["count"] == len(public["principles"])
    assert context["constitution"]["statements_selected"] == 8
    assert context["analysis"]["histogram"]["kept"] == 8  # every selected statement is in the histogram
    assert "not reviewed by a person" in html


@pytest.mark.browser
@pytest.mark.parametrize(
    "stages", [("analysis", "constitution", "training", "evaluation"), ("analysis", "constitution")]
)
def test_page_in_chromium_at_phone_and_desktop_width(tmp_path, stages):
    """~5 s: the page never scrolls sideways as a whole, and at 390 px no table scrolls sideways in its frame
    either (Table 1 and the adherence tables become one card per row; the others fit), Tab reaches the skip
    link first, and every figure has a name a screen reader reads. The evaluation report built from the
    same results.json is shot beside it."""
    import os

    from playwright.sync_api import sync_playwright

    from ccai.evaluation.report import write_report

    out = _study(tmp_path, stages=stages)
    if "evaluation" in stages:  # with the adherence section, and the real evaluation report
        results = _adherence_results()
        helpfulness = {  # the keys the evaluation report reads besides the ratings (pairwise.EloTable)
            **RESULTS["details"]["helpfulness"],
            "dimension": "helpfulness",
            "win_rates": {"base vs public": 0.52, "base vs ccai-standard": 0.47},
            "mean_position_bias": 0.03,
            "method": "Bradley-Terry fit over both answer orders",
        }
        results["details"] = {"helpfulness": helpfulness, **results["details"]}
        (out / "evaluation" / "results.json").write_text(json.dumps(results))
        write_report(results, out / "evaluation" / "report.html")
    page_url = write_study_report(out).as_uri()
    shots = Path(os.environ.get("CCAI_TEST_ARTEFACTS") or tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("CCAI_CHROMIUM", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu"],
        )
        try:
            for width in (390, 1280):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(page_url)
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                unscrolled = page.evaluate(
                    "[...document.querySelectorAll('table')].filter(t => !t.closest('.scroll')).length"
                )
                assert unscrolled == 0
                regions = page.evaluate(
                    "[...document.querySelectorAll('.scroll')].map(r => [r.tabIndex, "
                    "!!document.getElementById(r.getAttribute('aria-labelledby'))])"
                )
                assert regions and all(r == [0, True] for r in regions)
                names = page.evaluate(
                    "[...document.querySelectorAll('svg[role=img]')].map(s => s.getAttribute("
                    "'aria-labelledby').split(' ').every(id => "
                    "(document.getElementById(id)?.textContent || '').trim().length))"
                )
                assert names and all(names)
                page.keyboard.press("Tab")
                assert page.evaluate("document.activeElement.className") == "skip"
                page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
                if width == 390:  # every table readable without swiping it
                    assert page.evaluate(OVERFLOWING_TABLES) == []
                if "evaluation" in stages:
                    table = page.get_by_role("table", name="Table 1")
                    assert table.get_by_role("columnheader").count() == 5  # hidden on a phone, still read
                    assert table.get_by_role("rowheader").count() == 4
                    row = page.locator("table.stacked > tbody > tr").first
                    assert row.evaluate("r => getComputedStyle(r).display") == (
                        "block" if width == 390 else "table-row"
                    )
                page.screenshot(path=str(shots / f"study-{len(stages)}-stages-{width}.png"), full_page=True)
                page.close()
                if "evaluation" in stages:
                    page = browser.new_page(viewport={"width": width, "height": 900})
                    page.goto((out / "evaluation" / "report.html").as_uri())
                    page.screenshot(path=str(shots / f"evaluation-report-{width}.png"), full_page=True)
                    page.close()
        finally:
            browser.close()


def test_quality_gates_pm_agreement_and_a_contestant_judge_are_shown(tmp_path):
    """What the gates left out, how the preference model agrees with people, and a judge that competes."""
    import json

    from ccai.study_report import study_context

    run = tmp_path / "training" / "public"
    run.mkdir(parents=True)
    (run / "state.json").write_text(
        json.dumps(
            {
                "done": {
                    "sl_data": {
                        "rows": 20,
                        "sft_rows": 6,
                        "sft_rows_trimmed": 2,
                        "rows_dropped": {"truncated": 3, "no_accepted_revision": 11},
                        "revisions_checked": 16,
                        "revisions_rejected": {"truncated": 7, "copies_critique": 4},
                    },
                    "pm_train": {
                        "heldout_harmless_accuracy": 0.5,
                        "heldout_harmless_pairs": 32,
                        "heldout_helpful_accuracy": 0.53125,
                        "heldout_helpful_pairs": 32,
                    },
                }
            }
        )
    )
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "results.json").write_text(
        json.dumps(
            {
                "models": [{"label": "base", "spec": "smollm2"}],
                "measures": {},
                "judge": "smollm2",
                "judge_check": {"conflicts": ["the judge 'smollm2' is the contestant 'base'"]},
                "agreement": {
                    "judge": {"helpfulness": {"agreement": 0.625, "low": 0.31, "high": 0.86, "n": 8}}
                },
            }
        )
    )
    context = study_context(tmp_path)
    training = context["training"]
    filtered = " ".join(training["filtered_common"])
    assert "14 of 20 SL-CAI rows left out" in filtered and "11 no accepted revision" in filtered
    assert "11 of 16 revisions rejected" in filtered
    assert "2 of the 6 rows fine-tuned on are replies cut off at the token limit, trimmed" in filtered
    rows = dict(training["about"])
    assert rows["preference model vs people: held-out helpful pairs"] == ["0.53 of 32 pairs (chance 0.5)"]
    evaluation = context["evaluation"]
    assert evaluation["judge_conflicts"] == ["the judge 'smollm2' is the contestant 'base'"]
    assert evaluation["judge_agreement"] == ["helpfulness: 0.62 [0.31, 0.86] on 8 held-out human pairs"]


def _adherence_results() -> dict:
    """A results.json shaped as ``ccai eval --tasks adherence`` writes it (``adherence.summarize``'s keys)."""

    def cell(rate: float, low: float, high: float, n: int) -> dict:
        return {"win_rate": rate, "low": low, "high": high, "n": n, "wins": 0, "ties": 0, "losses": 0}

    def principle(pid: str, support: dict, public: dict, standard: dict) -> dict:
        return {
            "id": pid,
            "comparison": "Choose the response that is most honest.",
            "statements": [],
            "framing": {"polarity": "positive", "form": "trait"},
            "support": support,
            "adherence": {"public": public, "ccai-standard": standard},
            "prompts": [],
        }

    groups = {
        "0": {"value": 0.70, "low": 0.58, "high": 0.81, "principles": 2},
        "1": {"value": 0.66, "low": 0.52, "high": 0.78, "principles": 2},
    }
    return {
        **RESULTS,
        "tasks": ["mmlu", "adherence"],
        "agreement": {"judge": {"harmlessness": {"agreement": 0.56, "low": 0.26, "high": 0.83, "n": 8}}},
        "details": {
            "adherence": {
                "reference": "base",
                "challengers": ["public", "ccai-standard"],
                "constitutions": [
                    {
                        "name": "public",
                        "title": "public",
                        "version": "1.0.0",
                        "content_hash": "ef97",
                        "reviewed": False,
                        "n_principles": 101,
                        "n_evaluated": 2,
                        "groups": ["0", "1"],
                        "overall": {
                            "public": {"value": 0.68, "low": 0.55, "high": 0.80, "principles": 2},
                            "ccai-standard": {"value": 0.31, "low": 0.20, "high": 0.44, "principles": 2},
                        },
                        "by_group": {
                            "public": {
                                "groups": groups,
                                "spread": {
                                    "most": "0",
                                    "least": "1",
                                    "difference": 0.04,
                                    "low": 0.01,
                                    "high": 0.07,
                                },
                                "consensus": "every group: better than the reference on what it endorsed",
                            }
                        },
                        "by_framing": {},
                        "principles": [
                            principle(
                                "p1", {"0": 0.9, "1": 0.8}, cell(0.7, 0.5, 0.9, 6), cell(0.3, 0.1, 0.5, 6)
                            ),
                            principle(
                                "p2", {"0": 0.8, "1": 0.9}, cell(0.66, 0.5, 0.8, 5), cell(0.33, 0.2, 0.5, 5)
                            ),
                        ],
                    },
                    {
                        "name": "standard",
                        "title": "standard",
                        "version": "1.0.0",
                        "content_hash": "aa01",
                        "reviewed": True,
                        "n_principles": 54,
                        "n_evaluated": 1,
                        "groups": [],
                        "overall": {
                            "public": {"value": 0.52, "low": 0.40, "high": 0.64, "principles": 1},
                            "ccai-standard": {"value": 0.58, "low": 0.47, "high": 0.69, "principles": 1},
                        },
                        "by_group": {},
                        "by_framing": {},
                        "principles": [
                            principle("s1", {}, cell(0.52, 0.4, 0.64, 7), cell(0.58, 0.47, 0.69, 7))
                        ],
                    },
                ],
            }
        },
        "skipped": {},
    }


def test_adherence_section_reads_the_evaluation_summary_and_says_when_it_was_skipped(tmp_path):
    """Per constitution and model: win rate, interval, n (the principle rows' n added up, nothing refitted),
    per opinion group, whose principles each model follows better, the near-chance warning and the link; a
    skipped task shows its recorded reason and no table."""
    out = _study(tmp_path, stages=("evaluation",))
    (out / "evaluation" / "results.json").write_text(json.dumps(_adherence_results()))
    html = write_study_report(out).read_text()
    assert not _html_errors(html)
    section = _cell_text(html.split('<section id="adherence"')[1].split("</section>")[0])
    assert "Does each model follow its constitution?" in section
    assert "public constitution: adherence vs base (2 of 101 principles tested)" in section
    assert "0.68 [0.55, 0.80] above 0.5 n = 11" in section  # public on public: 6 + 5 judged prompts
    assert "0.31 [0.20, 0.44] below 0.5 n = 11" in section
    assert "weighted by group A's agreement 0.70 [0.58, 0.81]" in section
    assert "group A − group B = +0.04 [+0.01, +0.07]" in section
    assert "standard constitution: adherence vs base (1 of 54 principles tested)" in section
    assert "0.52 [0.40, 0.64] interval spans 0.5 n = 7" in section
    assert "no per-group view" in section
    assert "public: public's 0.68, standard's 0.52, no clear lead" in section
    assert "ccai-standard: standard's 0.58, public's 0.31, follows standard's principles better" in section
    assert "includes chance (0.5) for harmlessness" in section
    assert 'href="evaluation/report.html#adherence"' in html
    assert 'href="#adherence"' in html

    skipped = {
        **RESULTS,
        "tasks": ["mmlu", "adherence"],
        "skipped": {"adherence": "no constitution given (--constitution NAME=FILE)"},
    }
    (out / "evaluation" / "results.json").write_text(json.dumps(skipped))
    context = study_context(out)
    assert context["evaluation"]["adherence"]["skipped"] == [
        "no constitution given (--constitution NAME=FILE)"
    ]
    html = write_study_report(out).read_text()
    assert not _html_errors(html)
    section = _cell_text(html.split('<section id="adherence"')[1].split("</section>")[0])
    assert "The adherence task was skipped: no constitution given (--constitution NAME=FILE)." in section
    assert "<table" not in html.split('<section id="adherence"')[1].split("</section>")[0]

    (out / "evaluation" / "results.json").write_text(json.dumps(RESULTS))  # never asked for: no section
    assert study_context(out)["evaluation"]["adherence"] is None
    assert 'id="adherence"' not in write_study_report(out).read_text()


def _header_labels(html: str, caption: str) -> list[str]:
    """The column headers (but the first and ``n``) of the first header row after ``caption``."""
    start = html.index(caption)
    row = html[start : html.index("</tr>", start)]
    cells = [_cell_text(c).strip() for c in re.findall(r"<th\b[^>]*>(.*?)</th>", row, flags=re.S)]
    return [c for c in cells[1:] if c != "n"]


@pytest.mark.parametrize(
    "order", [(0, 1, 2), (0, 2, 1)], ids=["base-public-standard", "base-standard-public"]
)
def test_index_and_evaluation_report_show_the_models_in_one_order(tmp_path, order):
    """Table 1, the adherence tables and the training runs list the models as results.json does, on the
    index and in the evaluation report alike (the reference first), whatever the names."""
    from ccai.evaluation.report import render_report

    results = _adherence_results()
    results["models"] = [RESULTS["models"][k] for k in order]
    labels = [m["label"] for m in results["models"]]
    results["details"]["adherence"]["challengers"] = labels[1:][::-1]  # the index must not follow this one
    out = _study(tmp_path)
    (out / "evaluation" / "results.json").write_text(json.dumps(results))
    results["details"]["adherence"]["challengers"] = labels[1:]  # as the evaluation writes it
    report = render_report(results)
    (out / "evaluation" / "report.html").write_text(report)
    index = write_study_report(out).read_text()
    assert not _html_errors(index)
    assert _header_labels(index, 'id="table1-caption"') == labels
    assert _header_labels(report, "<th>measure</th>") == labels
    assert f"({' / '.join(labels)})" in index
    for caption in ('id="adh-caption-1"', 'id="adh-caption-2"'):
        assert _header_labels(index, caption) == labels[1:]
    assert _header_labels(index, 'id="runs-caption"') == labels[1:]  # the trained models, same order
    assert _header_labels(index, 'id="data-caption"') == labels[1:]
    evaluation_adherence = report[report.index('id="adherence"') :]
    assert _header_labels(evaluation_adherence, "<tr><th></th>") == [f"{m} vs base" for m in labels[1:]]
    # on a phone each cell carries its column's name, in the same order
    row = index[index.index('id="table1-caption"') :]
    row = row[row.index("<tbody") : row.index("</tr>", row.index("<tbody"))]
    assert re.findall(r'data-label="([^"]+)"', row) == [*labels, "n"]
