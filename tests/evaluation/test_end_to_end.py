"""End to end on the tiny random model: real backend, real CLI, files on disk, same seed -> same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ccai.cli import app
from ccai.evaluation import EvalConfig, evaluate
from ccai.evaluation.mmlu import MMLU
from ccai.evaluation.tasks import option_logprobs

pytestmark = pytest.mark.usefixtures("shared_data")


def test_fast_letter_scoring_equals_backend_logprobs(tiny_model: Path) -> None:
    from ccai.models.backends import TransformersBackend

    backend = TransformersBackend(tiny_model, batch_size=4)
    task = MMLU(shots=1)
    contexts = [task.prompt(s)[0] for s in task.sample(5, seed=0)]
    options = [" A", " B", " C", " D"]
    fast = option_logprobs(backend, contexts, options)
    flat = backend.logprobs([c for c in contexts for _ in options], [o for _ in contexts for o in options])
    assert [x for row in fast for x in row] == pytest.approx(flat, abs=1e-4)


def test_cli_end_to_end_on_the_tiny_model(tmp_path: Path, tiny_model: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "eval",
            f"one={tiny_model}",
            f"two={tiny_model}",
            "--judge",
            str(tiny_model),
            "--allow-contestant-judge",
            "--out",
            str(tmp_path / "run"),
            "--limit",
            "1",
            "--seed",
            "3",
            "--quiet",
            "--set",
            "bootstrap=50",
            "--set",
            "gsm8k.max_new_tokens=8",
            "--set",
            "answers.max_new_tokens=8",
            "--set",
            "mmlu.shots=1",
            "--set",
            "limits.harmlessness=2",
            "--set",
            "threads=1",
        ],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(results["measures"]) >= {
        "mmlu.accuracy",
        "gsm8k.accuracy",
        "bbq.mean_abs_bias_ambig",
        "opinionqa.representativeness",
        "safety.sst_attack_success",
    }
    assert results["reused"]["two"] == {t: "one" for t in ("mmlu", "gsm8k", "bbq", "opinionqa", "safety")}
    ratings = results["details"]["harmlessness"]["ratings"]
    assert (
        ratings["one"]["elo"] == 0.0
        and ratings["two"]["low"] <= ratings["two"]["elo"] <= ratings["two"]["high"]
    )
    assert (tmp_path / "run" / "report.html").stat().st_size > 10_000
    assert CliRunner().invoke(app, ["eval-report", str(tmp_path / "run")]).exit_code == 0


def test_same_seed_same_numbers_on_the_tiny_model(tmp_path: Path, tiny_model: Path) -> None:
    """The stochastic parts (sampled answers, judge, bootstrap) repeat exactly with the same seed."""
    config = EvalConfig(
        models=[f"one={tiny_model}", f"two={tiny_model}"],
        tasks=["harmlessness"],
        judge=str(tiny_model),
        allow_contestant_judge=True,
        limit=2,
        bootstrap=50,
        seed=5,
        threads=1,
        gsm8k={"max_new_tokens": 6},
        answers={"max_new_tokens": 6},
    )
    first = evaluate(config, tmp_path / "a", show_progress=False).results
    second = evaluate(config, tmp_path / "b", show_progress=False).results
    assert first["measures"] == second["measures"]
    assert first["details"]["harmlessness"] == second["details"]["harmlessness"]
    answers = [
        json.loads(line) for line in (tmp_path / "a" / "records" / "harmlessness__answers.jsonl").open()
    ]
    assert answers == [
        json.loads(line) for line in (tmp_path / "b" / "records" / "harmlessness__answers.jsonl").open()
    ]


def test_cli_names_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "eval",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "o"),
            "--limit",
            "1",
            "--tasks",
            "mmlu",
            "--quiet",
        ],
    )
    assert result.exit_code == 2 and "not a Hugging Face model folder" in " ".join(result.output.split())
    assert not (tmp_path / "o").exists()  # nothing half-written
    result = runner.invoke(app, ["eval", "smollm2", "--out", str(tmp_path / "o"), "--tasks", "mmlu,trivia"])
    assert result.exit_code == 2 and "unknown task" in result.output
    result = runner.invoke(app, ["eval-report", str(tmp_path)])
    assert result.exit_code == 2 and "no results.json" in " ".join(result.output.split())
