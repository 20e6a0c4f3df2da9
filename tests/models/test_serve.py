"""The OpenAI-compatible server on loopback (real uvicorn, real HTTP) serving tiny random Llamas.

What must hold: streamed chunks join to exactly the non-streamed reply; API keys are enforced; requests that
arrive together are decoded in one batch, and a seeded reply does not depend on its batch companions; every
limit answers with its own status and OpenAI's error shape; several models are listed and routed; a
constitution served as a system prompt reaches the model's input. About 15 s in all on a shared CPU.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from ccai.models.backends import OpenAIBackend, TransformersBackend
from ccai.models.serve import (
    BackgroundServer,
    ServedModel,
    ServeLimits,
    check_exposure,
    constitution_system_prompt,
    create_app,
    load_served_models,
    parse_named,
)

USER = [{"role": "user", "content": "Name three fruits."}]


class Recorder:
    """Wraps a model's ``generate`` to record every call's batch (the input ids), optionally holding it."""

    def __init__(self, model: Any) -> None:
        self.inputs: list[Any] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        original = model.generate

        def generate(*args: Any, **kwargs: Any) -> Any:
            self.inputs.append(kwargs["input_ids"])
            self.entered.set()
            self.release.wait(timeout=30)
            return original(*args, **kwargs)

        model.generate = generate

    @property
    def batch_sizes(self) -> list[int]:
        return [int(ids.shape[0]) for ids in self.inputs]


def _chat(url: str, model: str, messages: list[dict[str, str]], **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": messages, "max_tokens": 8, "temperature": 0, **extra}
    return httpx.post(f"{url}/chat/completions", json=body, timeout=60)


def _sse(url: str, path: str, body: dict[str, Any]) -> list[Any]:
    events = []
    with httpx.stream("POST", f"{url}{path}", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_streamed_chunks_join_to_the_non_streamed_reply(tiny_model: Path, tiny_backend: TransformersBackend):
    app = create_app(tiny_model, model_name="tiny", backend=tiny_backend)
    with BackgroundServer(app) as url:
        for messages in (USER, [{"role": "user", "content": "Écris un poème sur la mer. 🌊"}]):
            whole = _chat(url, "tiny", messages, max_tokens=12, temperature=1.0, seed=5).json()
            events = _sse(
                url,
                "/chat/completions",
                {
                    "model": "tiny",
                    "messages": messages,
                    "max_tokens": 12,
                    "temperature": 1.0,
                    "seed": 5,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
            )
            assert events[-1] == "[DONE]"
            chunks, usage = events[:-2], events[-2]
            assert all(c["object"] == "chat.completion.chunk" for c in chunks)
            assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
            text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
            answer = whole["choices"][0]["message"]["content"]
            assert answer and text == answer
            assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
            assert usage["choices"] == [] and usage["usage"] == whole["usage"]
            assert len(chunks) > 3  # it did stream, token by token

        body = {"prompt": "Once upon a time", "max_tokens": 10, "temperature": 1.0, "seed": 2}
        plain = httpx.post(f"{url}/completions", json=body).json()
        assert plain["choices"][0]["text"]
        events = _sse(url, "/completions", {**body, "stream": True})
        assert events[-1] == "[DONE]"
        assert "".join(e["choices"][0]["text"] for e in events[:-1]) == plain["choices"][0]["text"]


def test_api_key_is_required_when_configured(tiny_model: Path, tiny_backend: TransformersBackend):
    app = create_app(tiny_model, model_name="tiny", backend=tiny_backend, api_keys=["s3cret"])
    with BackgroundServer(app) as url:
        missing = httpx.get(f"{url}/models")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["error"]["type"] == "authentication_error"
        assert "no API key" in missing.json()["error"]["message"]
        assert _chat(url, "tiny", USER).status_code == 401  # a POST without a key too
        bad = httpx.get(f"{url}/models", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and "not valid" in bad.json()["error"]["message"]
        good = httpx.get(f"{url}/models", headers={"Authorization": "Bearer s3cret"})
        assert good.status_code == 200 and good.json()["data"][0]["id"] == "tiny"
        assert httpx.get(url.removesuffix("/v1") + "/health").status_code == 200  # probes need no key
        client = OpenAIBackend(url, "tiny", api_key="s3cret")
        assert client.generate([USER], max_new_tokens=3, temperature=0) == tiny_backend.generate(
            [USER], max_new_tokens=3, temperature=0
        )
        client.close()
    with pytest.raises(ValueError, match="needs an API key"):
        check_exposure("0.0.0.0", [])
    check_exposure("0.0.0.0", ["k"])
    check_exposure("127.0.0.1", [])


def test_requests_arriving_together_are_decoded_in_one_batch(
    tiny_model: Path, tiny_backend: TransformersBackend
):
    recorder = Recorder(tiny_backend.model)
    limits = ServeLimits(max_batch=4, batch_window_ms=3000)  # the 4th arrival starts the batch at once
    app = create_app(tiny_model, model_name="tiny", backend=tiny_backend, limits=limits)
    prompts = [[{"role": "user", "content": "Hi."}]]  # the shortest: left-padded in the batch
    prompts += [[{"role": "user", "content": f"Tell me about the number {k}, please."}] for k in range(1, 4)]
    settings = [
        {"temperature": 0, "logprobs": True, "top_logprobs": 5},
        {"temperature": 1.0, "seed": 6},
        {"temperature": 0.8, "top_p": 0.9, "seed": 7},
        {"temperature": 1.0, "seed": 8, "max_tokens": 3},
    ]
    replies: list[Any] = [None] * 4
    with BackgroundServer(app) as url:
        start = threading.Barrier(4)

        def ask(k: int) -> None:
            start.wait()
            replies[k] = _chat(url, "tiny", prompts[k], **settings[k]).json()

        threads = [threading.Thread(target=ask, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert recorder.batch_sizes == [4]
        assert app.state.workers[id(tiny_backend)].stats.batch_sizes == [4]
        texts = [r["choices"][0]["message"]["content"] for r in replies]
        assert all(texts[1:]) and len(set(texts[1:])) == 3
        # the padded greedy row sees the same distribution as the prompt alone, unpadded
        first = replies[0]["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        alone = tiny_backend.next_token_logprobs(tiny_backend.render(prompts[0]), 5)
        assert [t["token"] for t in first] == [t for t, _ in alone]
        assert [t["logprob"] for t in first] == pytest.approx([lp for _, lp in alone], abs=1e-4)
        assert replies[3]["usage"]["completion_tokens"] == 3
        assert replies[3]["choices"][0]["finish_reason"] == "length"
        assert replies[1]["usage"]["completion_tokens"] == 8
        # a seeded sampled reply is the same alone as in the batch: each row has its own generator
        app.state.workers[id(tiny_backend)].window_s = 0.0
        for k in (1, 2, 3):
            alone_text = _chat(url, "tiny", prompts[k], **settings[k]).json()["choices"][0]["message"][
                "content"
            ]
            assert alone_text == texts[k]
        assert recorder.batch_sizes == [4, 1, 1, 1]


def test_limits_answer_with_their_status_and_openai_error_shape(
    tiny_model: Path, tiny_backend: TransformersBackend
):
    recorder = Recorder(tiny_backend.model)
    limits = ServeLimits(max_tokens=32, max_body_bytes=2000, max_queue=1, retry_after_s=3)
    app = create_app(tiny_model, model_name="tiny", backend=tiny_backend, limits=limits)
    with BackgroundServer(app) as url:
        too_many = _chat(url, "tiny", USER, max_tokens=33)
        assert too_many.status_code == 400
        assert too_many.json()["error"]["param"] == "max_tokens" and "limit of 32" in too_many.text

        big = _chat(url, "tiny", [{"role": "user", "content": "x" * 3000}])
        assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"

        invalid = _chat(url, "tiny", USER, temperature=-1)
        assert invalid.status_code == 400 and invalid.json()["error"]["param"] == "temperature"
        role = _chat(url, "tiny", [{"role": "robot", "content": "hi"}])
        assert role.status_code == 400 and role.json()["error"]["param"].startswith("messages.0")
        unknown = _chat(url, "nope", USER)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
        assert "'tiny'" in unknown.json()["error"]["message"]
        stop = _chat(url, "tiny", USER, stop=["\n"])
        assert stop.status_code == 400 and stop.json()["error"]["param"] == "stop"
        assert httpx.post(f"{url}/chat/completions", content=b"{not json").status_code == 400

        # one request running fills the queue of 1: the next is refused with 503 and Retry-After
        recorder.release.clear()
        first: list[httpx.Response] = []
        runner = threading.Thread(target=lambda: first.append(_chat(url, "tiny", USER)))
        runner.start()
        assert recorder.entered.wait(timeout=30)
        busy = _chat(url, "tiny", USER)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "3"
        assert busy.json()["error"]["code"] == "overloaded"
        recorder.release.set()
        runner.join()
        assert first[0].status_code == 200
        assert _chat(url, "tiny", USER).status_code == 200  # the slot is free again


def test_context_length_is_checked(tiny_model: Path, tiny_backend: TransformersBackend):
    app = create_app(tiny_model, model_name="tiny", backend=tiny_backend, limits=ServeLimits(max_tokens=1024))
    with BackgroundServer(app) as url:  # the tiny model's context is 1024 tokens
        reply = _chat(url, "tiny", USER, max_tokens=1024)
        assert reply.status_code == 400
        error = reply.json()["error"]
        assert error["code"] == "context_length_exceeded" and "1024 tokens" in error["message"]


def test_two_models_are_listed_and_routed(tiny_model: Path, other_tiny_model: Path, tiny_backend):
    other = TransformersBackend(other_tiny_model, batch_size=1)
    app = create_app(models=[ServedModel("base", tiny_backend), ServedModel("public", other)])
    with BackgroundServer(app) as url:
        listed = httpx.get(f"{url}/models").json()
        assert [m["id"] for m in listed["data"]] == ["base", "public"]
        assert listed["data"][0]["max_model_len"] == 1024
        assert httpx.get(f"{url}/models/public").json()["id"] == "public"
        text = "The capital of France is Paris."
        for name, backend in (("base", tiny_backend), ("public", other)):
            body = {"model": name, "prompt": text, "max_tokens": 0, "echo": True, "logprobs": 1}
            scored = httpx.post(f"{url}/completions", json=body).json()
            assert scored["model"] == name
            values = scored["choices"][0]["logprobs"]["token_logprobs"]
            assert values[1:] == pytest.approx(backend.token_logprobs(text)[2][1:], abs=1e-5)
        replies = {n: _chat(url, n, USER, temperature=1.0, seed=4).json() for n in ("base", "public")}
        assert replies["base"]["model"] == "base" and replies["public"]["model"] == "public"
        contents = [r["choices"][0]["message"]["content"] for r in replies.values()]
        assert contents[0] != contents[1]  # same seed, different weights
        assert _chat(url, "", USER).status_code == 404  # two models: the name is required
    assert len(app.state.workers) == 2


def test_constitution_system_prompt_reaches_the_model(tiny_model: Path, tiny_backend: TransformersBackend):
    from ccai.constitution import Constitution, Principle

    constitution = Constitution(
        name="public test",
        principles=[
            Principle(
                id=f"p{k}",
                comparison=f"Choose the response that is most {w}.",
                critique_request="c",
                revision_request="r",
            )
            for k, w in enumerate(["honest", "respectful of privacy"])
        ],
    )
    prompt = constitution_system_prompt(constitution)
    assert "1. Choose the response that is most honest." in prompt and '"public test"' in prompt
    recorder = Recorder(tiny_backend.model)
    app = create_app(
        models=[ServedModel("base", tiny_backend), ServedModel("base-prompted", tiny_backend, prompt)],
        limits=ServeLimits(batch_window_ms=0),
    )
    assert len(app.state.workers) == 1  # same weights: one copy, one worker
    tok = tiny_backend.tokenizer
    with BackgroundServer(app) as url:
        reply = _chat(url, "base-prompted", USER, logprobs=True, top_logprobs=5).json()
        seen = tok.decode(recorder.inputs[-1][0], skip_special_tokens=False)
        assert "Choose the response that is most respectful of privacy." in seen
        assert seen.index("You are a helpful AI assistant. Your answers follow") < seen.index(
            "Name three fruits."
        )
        # what the model answers from is exactly the conversation with the constitution as system message
        local = tiny_backend.next_token_logprobs(
            tiny_backend.render([{"role": "system", "content": prompt}, *USER]), 5
        )
        top = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        assert [t["logprob"] for t in top] == pytest.approx([lp for _, lp in local], abs=1e-4)

        _chat(url, "base", USER)
        assert "constitution" not in tok.decode(recorder.inputs[-1][0], skip_special_tokens=False)

        own = [{"role": "system", "content": "Answer in French."}, *USER]
        _chat(url, "base-prompted", own)
        seen = tok.decode(recorder.inputs[-1][0], skip_special_tokens=False)
        assert seen.count("<|im_start|>system") == 1 and seen.index("most honest") < seen.index(
            "Answer in French."
        )
        assert httpx.get(f"{url}/models").json()["data"][1]["system_prompt"] is True


def test_served_models_share_weights_and_bad_options_are_named(tiny_model: Path):
    served = load_served_models([("a", str(tiny_model)), ("b", str(tiny_model))], {"b": "Be kind."})
    assert served[0].backend is served[1].backend and served[1].system_prompt == "Be kind."
    with pytest.raises(ValueError, match="no served model named \\['c'\\]"):
        load_served_models([("a", str(tiny_model))], {"c": "x"})
    with pytest.raises(ValueError, match="once"):
        load_served_models([("a", str(tiny_model)), ("a", "smollm2")])
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model folder"):
        load_served_models([("a", str(tiny_model.parent / "missing"))])
    with pytest.raises(ValueError, match="--model 'public': expected NAME=VALUE"):
        parse_named(["public"], "--model")
    assert parse_named(["x=runs/a=b"], "--model") == [("x", "runs/a=b")]


def test_cli_refuses_bad_options_before_loading_anything(tmp_path: Path):
    from typer.testing import CliRunner

    from ccai.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["models", "serve", "--model", "public"])
    assert result.exit_code == 2 and "expected NAME=VALUE" in result.output
    result = runner.invoke(app, ["models", "serve", "smollm2", "--host", "0.0.0.0"], env={"CCAI_API_KEY": ""})
    assert result.exit_code == 2 and "needs an API key" in result.output
    missing = tmp_path / "none.json"
    result = runner.invoke(app, ["models", "serve", "-m", "p=smollm2", "--constitution", f"p={missing}"])
    assert result.exit_code == 2 and "none.json" in result.output
