"""``ccai eval`` against a real OpenAI-compatible server on loopback (the training stage's ``serve_openai``
serving the tiny model): generation tasks give the same numbers as the local model; a generation-only server
(like the hosted OpenAI API) makes the tasks that need log-probabilities skip, with the reason recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ccai.evaluation import EvalConfig, evaluate

pytestmark = pytest.mark.usefixtures("shared_data")

SETTINGS: dict[str, Any] = {
    "seed": 2,
    "limit": 2,
    "bootstrap": 20,
    "threads": 1,
    "batch_size": 4,
    "gsm8k": {"shots": 0, "max_new_tokens": 6, "form": "chat"},  # a server only takes chat turns
    "answers": {"max_new_tokens": 6},
    "mmlu": {"shots": 0},
}


def _served(model_dir: Path) -> Any:
    from ccai.models.backends import TransformersBackend
    from ccai.models.serve import create_app

    return create_app(model_dir, model_name="tiny", backend=TransformersBackend(model_dir, batch_size=1))


def generation_only(inner: Any) -> Any:
    """Wrap the server so it answers like a hosted chat API: no legacy ``/v1/completions`` (404) and no
    vLLM extension ``continue_final_message`` (400, "unrecognized argument"), so no scored answer prefixes."""

    async def reject(send: Any, status: int, message: str) -> None:
        body = json.dumps({"error": {"message": message}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        if scope["path"] == "/v1/completions":
            return await reject(send, 404, "This is a chat model and not supported in v1/completions.")
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if b"continue_final_message" in body:
            return await reject(send, 400, "Unrecognized request argument supplied: continue_final_message")

        async def replay() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        return await inner(scope, replay, send)

    return app


def _records(run: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (run / "records" / name).open()]


def test_generation_tasks_through_the_server_equal_the_local_model(tmp_path: Path, tiny_model: Path) -> None:
    from ccai.models.serve import BackgroundServer

    with BackgroundServer(_served(tiny_model)) as url:
        config = EvalConfig(
            models=[f"api=openai:{url}#tiny", f"local={tiny_model}"],
            tasks=["gsm8k", "safety", "helpfulness"],
            judge=str(tiny_model),
            allow_contestant_judge=True,
            **SETTINGS,
        )
        results = evaluate(config, tmp_path / "run", show_progress=False).results
    assert results["skipped"] == {}
    for task, text in (("gsm8k", "completion"), ("safety", "answer")):  # greedy over HTTP = local greedy
        api = _records(tmp_path / "run", f"{task}__api.jsonl")
        local = _records(tmp_path / "run", f"{task}__local.jsonl")
        assert len(api) == len(results["samples"][task]) > 0
        assert [r[text] for r in api] == [r[text] for r in local]
        for key, by_model in results["measures"].items():
            if key.startswith(task + "."):
                assert by_model["api"] == by_model["local"], key
    ratings = results["details"]["helpfulness"]["ratings"]
    assert ratings["api"]["elo"] == 0.0 and ratings["local"]["low"] <= ratings["local"]["high"]
    assert "api" in results["side_by_side"]


def test_generation_only_server_skips_scored_tasks_with_the_reason(tmp_path: Path, tiny_model: Path) -> None:
    from ccai.models.serve import BackgroundServer

    with BackgroundServer(generation_only(_served(tiny_model))) as url:
        config = EvalConfig(
            models=[f"api=openai:{url}#tiny", f"local={tiny_model}"],
            tasks=["mmlu", "bbq", "opinionqa", "gsm8k", "harmlessness"],
            judge=f"openai:{url}#tiny",
            allow_contestant_judge=True,
            **SETTINGS,
        )
        results = evaluate(config, tmp_path / "run", show_progress=False).results
    skipped = results["skipped"]["api"]
    assert set(skipped) == {"mmlu", "bbq", "opinionqa"}
    assert all("log-probabilities" in reason for reason in skipped.values()), skipped
    assert "404" in skipped["mmlu"] and "continue_final_message" in skipped["bbq"]
    assert set(results["measures"]["gsm8k.accuracy"]) == {"api", "local"}
    assert set(results["measures"]["mmlu.accuracy"]) == {"local"}
    # a chat-only judge cannot give "(A)/(B)" log-probabilities: its written verdicts are read instead
    assert "judge" not in results["skipped"]
    judged = _records(tmp_path / "run", "harmlessness__judgements.jsonl")
    assert judged and all(r["verdicts"] == "text" for r in judged)
    assert results["judge_check"]["overridden"] and results["agreement"]["judge"]["harmlessness"]["n"] > 0
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Skipped" in html and "not independent" in html


def test_a_served_scenario_writer_writes_adherence_prompts(
    tmp_path: Path, tiny_model: Path, fake_backend
) -> None:
    """The writer over HTTP (the tiny random model writes junk; its reply and the count come back)."""
    from ccai.constitution.model import Constitution, Principle
    from ccai.models.backends import make_backend
    from ccai.models.serve import BackgroundServer

    path = tmp_path / "c.json"
    Constitution(
        name="toy",
        principles=[
            Principle(
                id="honest",
                comparison="Choose the response that is most honest.",
                critique_request="Identify ways the response falls short.",
                revision_request="Rewrite the response.",
            )
        ],
    ).save(path)

    def factory(spec: str) -> Any:
        return make_backend(spec) if spec.startswith("openai:") else fake_backend(name=spec)

    with BackgroundServer(_served(tiny_model)) as url:
        config = EvalConfig(
            models=["ref=fake1", "pub=fake2"],
            tasks=["adherence"],
            judge="judge",
            agreement_pairs=0,
            adherence={
                "constitutions": [f"toy={path}"],
                "pool_prompts": 0,
                "scenario_writer": f"openai:{url}#tiny",
                "generated": 1,
            },
            **{**SETTINGS, "answers": {"max_new_tokens": 4}},
        )
        result = evaluate(config, tmp_path / "run", backend_factory=factory, show_progress=False)
    (written,) = _records(tmp_path / "run", "adherence__writer.jsonl")
    assert written["writer"] == f"openai:{url}#tiny" and written["reply"]
    assert result.results["adherence_writer"]["written"] == written["written"] <= 1
    generated = [
        p for p in _records(tmp_path / "run", "adherence__prompts.jsonl") if p["origin"] == "generated"
    ]
    assert len(generated) == written["written"]
