"""`ccai analyze` and `ccai demo` end to end on real exports."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from ccai.cli import app

runner = CliRunner()


def test_analyze_writes_a_run_directory(shared_data, tmp_path):
    export = shared_data / "polis-opendata" / "bg2050-volunteers"
    out = tmp_path / "run"
    result = runner.invoke(app, ["analyze", str(export), "--out", str(out), "--groups", "k=2", "--seed", "3"])
    assert result.exit_code == 0, result.output
    for name in (
        "statements.csv",
        "participants.csv",
        "summary.json",
        "manifest.json",
        "config.yaml",
        "log.jsonl",
    ):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "analysis" and manifest["seed"] == 3 and manifest["inputs"]
    assert json.loads((out / "summary.json").read_text())["k"] == 2


def test_analyze_ccai_with_the_organisers_rules(shared_data, tmp_path):
    folder = shared_data / "ccai_polis"
    out = tmp_path / "ccai"
    result = runner.invoke(
        app,
        [
            "analyze",
            str(folder),
            "--out",
            str(out),
            "--moderation",
            "accepted",
            "--more-than",
            "25",
            "--exclude",
            str(folder / "ids-to-toss.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["participants_in_analysis"] == 1002
    assert summary["counts"]["statements_eligible"] == 275


def test_analyze_given_groups_from_the_file(shared_data, tmp_path):
    folder = shared_data / "ccai_polis"
    out = tmp_path / "given"
    result = runner.invoke(
        app,
        [
            "analyze",
            str(folder),
            "--out",
            str(out),
            "--groups",
            "given",
            "--participants-votes",
            "clean_votes.csv",
        ],
    )
    assert result.exit_code == 0, result.output
    statements = pd.read_csv(out / "statements.csv")
    assert round(statements["gac"].mean(), 2) == 0.64 and (statements["gac"] > 0.723).sum() == 116


def test_bad_input_gives_one_clear_line(tmp_path, shared_data):
    result = runner.invoke(app, ["analyze", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "error:" in result.output and "missing" in result.output
    result = runner.invoke(
        app,
        [
            "analyze",
            str(shared_data / "polis-opendata" / "bg2050-volunteers"),
            "--out",
            str(tmp_path / "o"),
            "--groups",
            "many",
        ],
    )
    assert result.exit_code == 2 and "k=N" in result.output
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_demo_reproduces_the_paper(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "0.723" in result.output and "116" in result.output
    for name in ("published", "realigned", "own", "own_k2"):
        assert (tmp_path / name / "summary.json").is_file()
    published = json.loads((tmp_path / "published" / "summary.json").read_text())
    assert published["gac_above_paper_threshold"]["count"] == 116
