"""The whole evaluation on test doubles: files written, same seed -> same numbers, reuse, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccai.config import ConfigError, load_config
from ccai.evaluation import EvalConfig, evaluate, parse_models

pytestmark = pytest.mark.usefixtures("shared_data")


def _config(models: list[str], **extra) -> EvalConfig:
    extra.setdefault("judge", "judge")
    return EvalConfig(models=models, limit=4, bootstrap=50, seed=7, **extra)


def _strip_timings(value):
    if isinstance(value, dict):
        return {k: _strip_timings(v) for k, v in value.items() if k not in ("timings", "seconds")}
    if isinstance(value, list):
        return [_strip_timings(v) for v in value]
    return value


def test_evaluate_writes_results_report_and_log(tmp_path: Path, fake_backend) -> None:
    made: list[str] = []

    def factory(spec: str):
        made.append(spec)
        return fake_backend(name=spec)

    result = evaluate(
        _config(["a=fake1", "b=fake2"]), tmp_path / "run", backend_factory=factory, show_progress=False
    )
    run = result.path
    for name in ("results.json", "report.html", "manifest.json", "config.yaml", "log.jsonl"):
        assert (run / name).is_file(), name
    results = json.loads((run / "results.json").read_text())
    assert [m["label"] for m in results["models"]] == ["a", "b"]
    assert set(results["measures"]["mmlu.accuracy"]) == {"a", "b"}
    assert results["samples"]["mmlu"] and len(results["samples"]["bbq"]) == 4
    assert results["details"]["helpfulness"]["ratings"]["a"]["elo"] == 0.0
    assert results["details"]["harmlessness"]["n_prompts"] == 4
    assert set(results["side_by_side"]["a"]) == set(results["samples"]["safety"])
    records = sorted(p.name for p in (run / "records").iterdir())
    assert "mmlu__a.jsonl" in records and "helpfulness__judgements.jsonl" in records
    html = (run / "report.html").read_text()
    assert "Table 1" in html and html.count("data:image/png;base64,") == 2
    assert "Helpfulness Elo" in html and "Side by side" in html
    events = [json.loads(line)["event"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert events.count("sample") == 7 and "elo" in events
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seed"] == 7 and "results.json" in manifest["outputs"]
    assert made == ["fake1", "fake2", "judge"]  # two models, then the judge (named, independent)
    assert results["judge_check"]["independent"] and results["judge_check"]["mode"] == "hard"
    assert set(results["agreement"]["judge"]) == {"helpfulness", "harmlessness"}
    assert results["agreement"]["judge"]["harmlessness"]["n"] == 4
    paired = results["paired"]
    assert set(paired["mmlu.accuracy"]) == {"b"} and paired["mmlu.accuracy"]["b"]["n"] == 4
    assert paired["bbq.mean_abs_bias_ambig"]["b"]["margin"] == 5.0
    assert "helpfulness.elo" in paired and "Δ" in html


def test_same_seed_same_numbers_and_reuse_of_a_repeated_model(tmp_path: Path, fake_backend) -> None:
    def factory(spec: str):
        return fake_backend(name=spec)

    config = _config(["fake1", "fake1"], tasks=["mmlu", "bbq", "helpfulness"])
    one = evaluate(config, tmp_path / "one", backend_factory=factory, show_progress=False).results
    two = evaluate(config, tmp_path / "two", backend_factory=factory, show_progress=False).results
    assert _strip_timings(one) == _strip_timings(two)
    assert [m["label"] for m in one["models"]] == ["fake1", "fake1#2"]
    assert one["reused"] == {"fake1#2": {"mmlu": "fake1", "bbq": "fake1"}}
    assert one["measures"]["mmlu.accuracy"]["fake1"] == one["measures"]["mmlu.accuracy"]["fake1#2"]
    other = evaluate(
        config.model_copy(update={"seed": 8}),
        tmp_path / "three",
        backend_factory=factory,
        show_progress=False,
    ).results
    assert other["samples"]["mmlu"] != one["samples"]["mmlu"]


def test_bad_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no models"):
        parse_models([])
    with pytest.raises(ConfigError, match="unknown task"):
        load_config(EvalConfig, None, ["tasks=[mmlu,trivia]"])
    with pytest.raises(ConfigError, match="limits.trivia"):
        load_config(EvalConfig, None, ["limits={trivia: 3}"])
    with pytest.raises(ConfigError, match="shots"):
        load_config(EvalConfig, None, ["mmlu.shots=9"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("limit: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(EvalConfig, bad)
    assert [e.label for e in parse_models(["x=/tmp/m", "/tmp/m", "openai:http://h:1/v1#name"])] == [
        "x",
        "m",
        "name",
    ]


def test_a_backend_without_logprobs_skips_those_tasks_only(tmp_path: Path, fake_backend) -> None:
    class GenerationOnly(fake_backend):
        def logprobs(self, contexts, continuations):
            raise NotImplementedError("this server gives no prompt log-probabilities")

    result = evaluate(
        _config(["g=gen"], tasks=["mmlu", "gsm8k"]),
        tmp_path / "run",
        backend_factory=lambda spec: GenerationOnly(name=spec),
        show_progress=False,
    )
    assert "no prompt log-probabilities" in result.results["skipped"]["g"]["mmlu"]
    assert (
        "gsm8k.accuracy" in result.results["measures"] and "mmlu.accuracy" not in result.results["measures"]
    )


def test_pairwise_with_one_model_is_skipped_without_generating(tmp_path: Path, fake_backend) -> None:
    made = []

    def factory(spec: str):
        made.append(fake_backend(name=spec))
        return made[-1]

    result = evaluate(
        _config(["solo"], tasks=["helpfulness"]),
        tmp_path / "run",
        backend_factory=factory,
        show_progress=False,
    )
    assert "at least two models" in result.results["skipped"]["pairwise"]
    assert all(b.calls["generate"] == 0 for b in made)
