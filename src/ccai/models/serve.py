"""A minimal OpenAI-compatible HTTP server over a local model (for tests and small local set-ups).

It speaks the subset of the API that :class:`ccai.models.backends.OpenAIBackend` uses, with the same
field names as vLLM: ``/v1/models``, ``/v1/chat/completions`` (``max_tokens``, ``temperature``, ``top_p``,
``seed``, ``logprobs`` + ``top_logprobs``, and vLLM's ``continue_final_message``) and ``/v1/completions``
(``echo`` + ``logprobs``). It exists so the HTTP client is tested against a real server on loopback; for real
throughput use vLLM, TGI or llama.cpp's server.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Message(BaseModel):
    role: str
    content: str


class _ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = ""
    messages: list[_Message] = Field(min_length=1)
    max_tokens: int = Field(64, ge=1, le=4096)
    temperature: float = Field(0.7, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = 0
    n: int = Field(1, ge=1, le=1)
    logprobs: bool = False
    top_logprobs: int = Field(0, ge=0, le=50)
    continue_final_message: bool = False
    add_generation_prompt: bool = True


class _CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = ""
    prompt: str = Field(min_length=1)
    max_tokens: int = Field(16, ge=0, le=4096)
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = 0
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5)


class ScoreBatcher:
    """Concurrent one-token scoring requests (the A/B labeller's and multiple-choice questions) answered
    together by batched forward passes, as vLLM batches concurrent requests: a request arriving while the
    model is idle is scored at once (after ``wait_s``, 0 by default, so a lone client pays nothing); those
    arriving meanwhile queue and are scored together in the next pass. Without it the server answers one
    request per forward pass and a client's concurrency gains nothing."""

    def __init__(self, engine: Any, lock: threading.Lock, wait_s: float = 0.0) -> None:
        self.engine, self.lock, self.wait_s = engine, lock, wait_s
        self.mutex = threading.Lock()
        self.pending: list[dict[str, Any]] = []
        self.running = False
        self.batches: list[int] = []  # size of each batch scored (for benches and tests)

    def submit(self, text: str, top: int) -> list[tuple[str, float]]:
        item: dict[str, Any] = {"text": text, "top": top, "done": threading.Event()}
        with self.mutex:
            self.pending.append(item)
            leader = not self.running
            self.running = True
        if not leader:
            item["done"].wait()
        else:
            if self.wait_s:
                time.sleep(self.wait_s)
            while True:
                with self.mutex:
                    batch, self.pending = self.pending, []
                    if not batch:
                        self.running = False
                        break
                try:
                    with self.lock:
                        tops = self.engine.next_token_logprobs_batch(
                            [b["text"] for b in batch], max(b["top"] for b in batch)
                        )
                    for b, found in zip(batch, tops, strict=True):
                        b["result"] = found[: b["top"]]
                except Exception as exc:  # every waiting request gets the error, none hangs
                    for b in batch:
                        b["error"] = exc
                self.batches.append(len(batch))
                for b in batch:
                    b["done"].set()
        if "error" in item:
            raise item["error"]
        return item["result"]


def create_app(model_dir: str | Path, model_name: str | None = None, backend: Any = None) -> Any:
    """A FastAPI app serving ``model_dir`` (or an already loaded ``TransformersBackend``)."""
    from fastapi import FastAPI, HTTPException

    from ccai.models.backends import TransformersBackend

    engine = backend if backend is not None else TransformersBackend(model_dir, batch_size=1)
    name = model_name or Path(model_dir).name
    lock = threading.Lock()  # one forward pass at a time: the model is not thread-safe
    app = FastAPI(title="ccai OpenAI-compatible server")
    app.state.scorer = scorer = ScoreBatcher(engine, lock)

    def check_model(requested: str) -> None:
        if requested and requested != name:
            raise HTTPException(404, f"model {requested!r} not served; this server has {name!r}")

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "ccai"}]}

    @app.post("/v1/chat/completions")
    def chat(req: _ChatRequest) -> dict[str, Any]:
        check_model(req.model)
        messages = [m.model_dump() for m in req.messages]
        prefix = ""
        if req.continue_final_message:
            if messages[-1]["role"] != "assistant":
                raise HTTPException(400, "continue_final_message needs a final assistant message")
            prefix = messages.pop()["content"]
        if not messages:
            raise HTTPException(400, "messages: nothing before the final assistant message")
        if req.logprobs and req.max_tokens == 1 and req.temperature == 0:
            # a scoring request: batched with concurrent ones; the greedy token is the most likely one
            with lock:
                text = engine.render(messages, prefix)
            top = scorer.submit(text, max(1, req.top_logprobs))
            return _chat_reply(name, top[0][0].strip(), "length", top, 1)
        with lock:
            text = engine.render(messages, prefix)
            generation = engine.generate_texts_with_info(
                [text], req.max_tokens, req.temperature, req.top_p, req.seed
            )[0]
            reply = generation.text
            top: list[tuple[str, float]] = []
            if req.logprobs:
                top = engine.next_token_logprobs(text, max(1, req.top_logprobs))
        tokens = len(engine.tokenizer(reply, add_special_tokens=False)["input_ids"])
        return _chat_reply(name, reply, generation.finish_reason, top if req.logprobs else None, tokens)

    @app.post("/v1/completions")
    def completions(req: _CompletionRequest) -> dict[str, Any]:
        check_model(req.model)
        with lock:
            generated = ""
            if req.max_tokens > 0:
                generated = engine.generate_texts(
                    [req.prompt],
                    max_new_tokens=req.max_tokens,
                    temperature=req.temperature,
                    top_p=req.top_p,
                    seed=req.seed,
                )[0]
            logprobs = None
            if req.logprobs is not None:
                full = req.prompt + generated if req.echo else generated
                tokens, offsets, values = engine.token_logprobs(full) if full else ([], [], [])
                logprobs = {
                    "tokens": tokens,
                    "text_offset": offsets,
                    "token_logprobs": values,
                    "top_logprobs": None,
                }
        text = req.prompt + generated if req.echo else generated
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:12]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": name,
            "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length"}],
        }

    return app


def _chat_reply(
    name: str, reply: str, finish_reason: str | None, top: list[tuple[str, float]] | None, tokens: int
) -> dict[str, Any]:
    logprobs = None
    if top:
        logprobs = {
            "content": [
                {
                    "token": top[0][0],
                    "logprob": top[0][1],
                    "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top],
                }
            ]
        }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "logprobs": logprobs,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"completion_tokens": tokens},
    }


class BackgroundServer:
    """Run an app with uvicorn on a loopback port in a thread: ``with BackgroundServer(app) as url: ...``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
        self.url = f"http://{host}:{port}/v1"
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server at {self.url} did not start")
            time.sleep(0.05)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
