"""`ccai analyze` and `ccai reproduce` end to end on real exports."""

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
    assert "report.html" in manifest["outputs"]
    assert json.loads((out / "summary.json").read_text())["k"] == 2
    # same seed, same files, to the byte (the report's embedded figures included)
    again = tmp_path / "again"
    runner.invoke(app, ["analyze", str(export), "--out", str(again), "--groups", "k=2", "--seed", "3"])
    for name in ("statements.csv", "participants.csv", "summary.json", "report.html"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


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
    # the published labels are compared with Polis's own groups from the folder's raw matrix: chance level
    pairs = {(r["a"], r["b"]): r["ari"] for r in json.loads((out / "summary.json").read_text())["agreement"]}
    assert abs(pairs[("given", "polis")]) < 0.02
    output = " ".join(result.output.split())
    assert "warning: the given groups agree with 'polis' only at chance level" in output


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
    bg2050 = str(shared_data / "polis-opendata" / "bg2050-volunteers")
    (tmp_path / "afile").write_text("")
    for args, message in (
        (["--out", str(tmp_path / "afile")], "exists and is not a folder"),
        (["--out", str(tmp_path / "o"), "--min-votes", "-3"],
         "min_votes: Input should be greater than or equal to 0 (got -3)"),
        (["--out", str(tmp_path / "o"), "--exclude", str(tmp_path / "nope.csv")], "id list not found"),
        (["--out", str(tmp_path / "o"), "--groups", "given", "--given-file", "nope.csv"], "file not found"),
        (["--out", str(tmp_path / "o"), "--moderation", "maybe"],
         "moderation: Input should be 'polis', 'accepted' or 'none' (got 'maybe')"),
    ):
        result = runner.invoke(app, ["analyze", bg2050, *args])
        assert result.exit_code == 2 and result.output.strip().startswith("error:"), args
        assert message in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_demo_reproduces_the_paper(tmp_path):
    result = runner.invoke(app, ["reproduce", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "0.723" in result.output and "116" in result.output
    summary = {}
    for name in ("published", "realigned", "own", "own_k2"):
        assert (tmp_path / name / "report.html").is_file()
        summary[name] = json.loads((tmp_path / name / "summary.json").read_text())
    assert summary["published"]["gac_above_paper_threshold"]["count"] == 116
    assert summary["realigned"]["gac_above_paper_threshold"]["count"] == 113
    assert round(summary["realigned"]["gac"]["gac"]["mean"], 3) == 0.625
    # ccai's own clustering, organisers' rules: k = 4 by silhouette; with k = 2 it finds Polis's groups
    assert summary["own"]["k"] == 4 and summary["own"]["counts"]["participants_in_analysis"] == 1002
    pairs = {(r["a"], r["b"]): r for r in summary["own_k2"]["agreement"]}
    assert abs(pairs[("polis", "ccai")]["ari"] - 0.925) < 0.005
    assert abs(pairs[("polis", "published")]["ari"]) < 0.02
    assert "Paper vs recomputed" in (tmp_path / "published" / "report.html").read_text()
