"""The `ccai constitution` commands, end to end on the real data (in-process, sharing the embedding cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ccai.cli import app
from ccai.constitution import Constitution

runner = CliRunner()


def ccai(*args: str) -> str:
    result = runner.invoke(app, ["constitution", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_reproduce_prints_figures_next_to_paper(shared_data: Path, embedder, tmp_path: Path) -> None:
    output = ccai("reproduce", "--out", tmp_path)
    assert "public principles" in output and "75" in output and "~50%" in output
    figures = json.loads((tmp_path / "figures.json").read_text())
    ccai_figures = figures["ccai"]
    assert ccai_figures["statements_selected"] == 116
    assert ccai_figures["merges_proposed"] > 0
    assert (
        ccai_figures["public_principles"]
        == 116 - ccai_figures["statements_merged"] + ccai_figures["merges_proposed"]
    )
    # the paper's qualitative finding: the public constitution promotes desired behaviour more than it
    # avoids undesired behaviour
    assert ccai_figures["public_promotes_desired"] > ccai_figures["public_avoids_undesired"]
    for suffix in ("json", "yaml", "md", "html", "recipe.json"):
        assert (tmp_path / "ccai" / f"public.{suffix}").is_file()
    public = Constitution.load(tmp_path / "ccai" / "public.json")
    assert all(p.sources for p in public.principles)
    assert (tmp_path / "ccai" / "compare_standard.html").is_file()
    legal = figures["avenue3"]
    assert set(legal["per_country_principles"]) == {"UDHR", "US", "ZA", "IN", "DE", "JP"}
    assert legal["global_principles"] > 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["stage"] == "constitution" and "figures.json" in manifest["outputs"]


def test_build_then_rebuild_with_review(shared_data: Path, embedder, tmp_path: Path) -> None:
    csv = shared_data / "ccai" / "ccai_statement_reference.csv"
    ccai("build", "--statements", csv, "--count", 40, "--out", tmp_path, "--name", "pub")
    first = Constitution.load(tmp_path / "pub.json")
    assert len(first) == 40  # --count is principles
    review = yaml.safe_load((tmp_path / "review.yaml").read_text())
    # a person merges the two best supported principles' statements
    a, b = (p.sources[0].id for p in first.principles[:2])
    review["merges"] = [{"id": "p1", "members": [a, b], "keep": a}]
    (tmp_path / "review.yaml").write_text(yaml.safe_dump(review))
    output = ccai("build", "--statements", csv, "--count", 40, "--out", tmp_path, "--name", "pub")
    assert "applied (reviewed)" in output
    second = Constitution.load(tmp_path / "pub.json")
    assert len(second) == 39  # the review's selection is kept; the person's merge leaves one fewer
    assert second.principles[0].metadata["merge"]["members"] == [a, b]
    assert (tmp_path / "selection.csv").is_file() and (tmp_path / "manifest.json").is_file()


def test_from_text_merge_compare_show_convert(shared_data: Path, embedder, tmp_path: Path) -> None:
    root = shared_data / "constitutions"
    ccai(
        "from-text",
        root / "udhr" / "udhr_eng_articles.jsonl",
        "--country",
        "UDHR",
        "--out",
        tmp_path / "u.json",
    )
    ccai(
        "from-text",
        root / "national" / "japan_1946_en_constitute.txt",
        "--country",
        "JP",
        "--out",
        tmp_path / "jp.yaml",
    )
    ccai(
        "from-text",
        root / "national" / "south_africa_1996_en.md",
        "--country",
        "ZA",
        "--out",
        tmp_path / "za.json",
    )
    output = ccai(
        "merge",
        tmp_path / "jp.yaml",
        tmp_path / "za.json",
        "--base",
        tmp_path / "u.json",
        "--out",
        tmp_path / "g",
    )
    assert "support counts" in output
    assert Constitution.load(tmp_path / "g" / "global.json").metadata["countries"] == ["JP", "ZA"]
    output = ccai("compare", tmp_path / "jp.yaml", tmp_path / "u.json", "--html", tmp_path / "c.html")
    assert (
        "covered by" in output
        and "matched pairs" in output
        and (tmp_path / "c.html").read_text().startswith("<!doctype html>")
    )
    output = ccai("show", tmp_path / "u.json", "--sources")
    assert "Article 19" in output
    ccai("convert", tmp_path / "jp.yaml", tmp_path / "jp.json")
    ccai("convert", tmp_path / "jp.json", tmp_path / "jp2.yaml")
    assert (tmp_path / "jp.yaml").read_text() == (tmp_path / "jp2.yaml").read_text()
    # the CAI paper's published prompt folder converts to a constitution of its 16 principles
    ccai("convert", shared_data / "ccai" / "cai_paper_prompts", tmp_path / "cai.json")
    assert len(Constitution.load(tmp_path / "cai.json")) == 16


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("show", "missing.json"), "not found"),
        (("convert", "bad.yaml", "out.json"), "not valid YAML"),
        (("build", "--out", "o", "--count", "3"), "exactly one of --analysis"),
        (("from-text", "bad.yaml", "--country", "X", "--out", "x.txt"), "unknown file type"),
        (("convert", ".", "out.json"), "not the CAI paper's prompt folder"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args, expected) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    result = runner.invoke(app, ["constitution", *args])
    assert result.exit_code == 2
    assert "error:" in result.output and expected in result.output.replace("\n", " ")
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_build_with_lm_rewriter_records_every_answer(shared_data: Path, embedder, tmp_path: Path) -> None:
    """`--rewriter lm --model DIR` with a real (tiny, random-weight, locally built) model: whatever it says is
    stored per principle, and answers that are not principles fall back to the rules, marked as such."""
    from ccai.models.prepare import tiny_model_dir

    model = tiny_model_dir(tmp_path / "tiny", seed=0)
    csv = shared_data / "ccai" / "ccai_statement_reference.csv"
    args = ["build", "--statements", csv, "--count", 6, "--out", tmp_path / "run"]
    output = ccai(*args, "--rewriter", "lm", "--model", model, "--lm-wording", "--max-new-tokens", 8)
    assert "rewritten by the LM" in output
    built = Constitution.load(tmp_path / "run" / "public.json")
    for principle in built.principles:
        rewrite = principle.metadata["rewrite"]
        assert isinstance(rewrite["lm_answer"], str)
        assert rewrite["by"] in ("lm", "rules (lm answer rejected)")
        if rewrite["by"] != "lm":
            assert principle.comparison.startswith("Choose the response that")
    assert built.metadata["rewriter"].startswith("lm (")
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["rewriter"] == "lm" and config["model"] == str(model)
    # same model, same seed: same constitution
    ccai(*args[:-1], tmp_path / "again", "--rewriter", "lm", "--model", model, "--max-new-tokens", 8)
    again = Constitution.load(tmp_path / "again" / "public.json")
    assert [p.metadata["rewrite"] for p in again.principles] == [
        p.metadata["rewrite"] for p in built.principles
    ]


def test_lm_options_refused_without_model(shared_data: Path, tmp_path: Path) -> None:
    csv = shared_data / "ccai" / "ccai_statement_reference.csv"
    base = ["constitution", "build", "--statements", str(csv), "--count", "5", "--out", str(tmp_path / "x")]
    for extra, message in (
        (["--rewriter", "lm"], "needs --model"),
        (["--rewriter", "gpt"], "rewriter: Input should be 'rules' or 'lm' (got 'gpt')"),
        (["--lm-wording"], "--lm-wording needs --rewriter lm"),
    ):
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "x").exists()  # refused before anything is written


@pytest.mark.slow
def test_from_text_with_lm_records_answers(shared_data: Path, tmp_path: Path) -> None:
    from ccai.models.prepare import tiny_model_dir

    model = tiny_model_dir(tmp_path / "tiny", seed=0)
    text = shared_data / "constitutions" / "national" / "japan_1946_en_constitute.txt"
    out = tmp_path / "jp.json"
    ccai("from-text", text, "--country", "JP", "--out", out, "--rewriter", "lm", "--model", model)
    jp = Constitution.load(out)
    assert jp.metadata["rewriter"] == "lm"
    for principle in jp.principles:
        assert "lm_answer" in principle.metadata["rewrite"] and principle.sources
        assert principle.metadata["rewrite"]["by"] in ("lm", "rules (lm answer rejected)")


def test_show_prints_text_not_markup_and_approve_records_a_person(tmp_path: Path) -> None:
    from ccai.constitution import Principle

    tricky = "Choose the response that is [not] harmful [/bold] [link=x]"
    c = Constitution(
        name="t",
        principles=[Principle(id="p1", comparison=tricky, critique_request="c", revision_request="r")],
    )
    path = c.save(tmp_path / "c.json")
    output = ccai("show", path)
    assert "[not] harmful [/bold] [link=x]" in " ".join(output.split())
    assert "not reviewed by a person" in " ".join(output.split())
    output = ccai("approve", path, "--by", "Ada")
    assert "approved by Ada" in " ".join(output.split())
    assert Constitution.load(path).is_reviewed


def test_empty_selection_exits_non_zero(shared_data: Path, tmp_path: Path) -> None:
    csv = shared_data / "ccai" / "ccai_statement_reference.csv"
    result = runner.invoke(
        app,
        ["constitution", "build", "--statements", str(csv), "--threshold", "0.99", "--out", str(tmp_path)],
    )
    assert result.exit_code != 0 and "no statement has GAC >= 0.990" in result.output.replace("\n", " ")
    assert not (tmp_path / "public.json").exists()
