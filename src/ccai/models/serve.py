"""An OpenAI-compatible HTTP server for local models: the base model, trained copies, prompted ones.

Why serve at all: a study compares models (base, standard, public; trained or only prompted with the
constitution) through one client, ``openai:URL#NAME``, and the consultation app shows their answers to
people. One process serves several named models; names that point at the same weights share one loaded copy
and one batching worker (:mod:`ccai.models.batching`), so a prompted variant costs no extra memory.

The API is the subset of OpenAI's that clients use, with vLLM's field names where OpenAI has none:
``GET /v1/models``; ``POST /v1/chat/completions`` (``max_tokens`` or ``max_completion_tokens``,
``temperature``, ``top_p``, ``seed``, ``stream`` with ``stream_options.include_usage``, ``logprobs`` +
``top_logprobs``, vLLM's ``continue_final_message``); ``POST /v1/completions`` (``echo`` + ``logprobs``,
``stream``); ``GET /health``. Errors use OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``.
Limits: a cap on ``max_tokens``, on the body size (413), on the queue (503 with ``Retry-After``) and on the
context length (400); API keys as ``Authorization: Bearer KEY`` (401 otherwise).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ccai.models.batching import BatchWorker, GenerationJob, QueueFull, TokenEvent

#: Environment variable read for the API key when none is given on the command line.
API_KEY_ENV = "CCAI_API_KEY"


@dataclass
class ServeLimits:
    """What one request may ask for, and how much may wait; each refusal names the limit and the fix."""

    max_tokens: int = 1024  #: largest ``max_tokens`` a request may ask for (400 above)
    max_body_bytes: int = 1_000_000  #: request bodies above this are refused (413)
    max_queue: int = 64  #: requests waiting or running per loaded model; more get 503 + Retry-After
    max_batch: int = 16  #: rows decoded together
    batch_window_ms: float = 10.0  #: how long the worker waits for companions after the first request
    retry_after_s: int = 1  #: the Retry-After sent with 503


@dataclass
class ServedModel:
    """A name clients send, the backend that answers it, and an optional system prompt put first."""

    name: str
    backend: Any  #: a ``TransformersBackend`` (``model``, ``tokenizer``, ``render``, ``token_logprobs``)
    system_prompt: str = ""
    root: str = ""  #: the model folder, shown in ``/v1/models``


def constitution_system_prompt(constitution: Any) -> str:
    """The system prompt applying a constitution at inference time (the prompted baseline, as in OSCCAI).

    ``constitution`` is a :class:`ccai.constitution.Constitution` (anything with ``name`` and ``principles``
    whose items have ``comparison``); the principles are listed in their comparison form, in order.
    """
    principles = [str(p.comparison).strip() for p in constitution.principles]
    if not principles:
        raise ValueError(f"constitution {constitution.name!r} has no principles to put in a system prompt")
    lines = [
        "You are a helpful AI assistant. Your answers follow a constitution written with the public, "
        f'"{constitution.name}". Of all the answers you could give, give the one its principles prefer:',
        "",
    ]
    lines += [f"{k}. {text}" for k, text in enumerate(principles, start=1)]
    return "\n".join(lines)


def parse_named(values: Sequence[str], option: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` pairs of a repeatable option, refusing anything else with the option named."""
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise ValueError(f"{option} {value!r}: expected NAME=VALUE, e.g. {option} public=runs/x/model")
        pairs.append((name.strip(), rest.strip()))
    return pairs


def load_served_models(
    models: Sequence[tuple[str, str]],
    system_prompts: dict[str, str] | None = None,
    *,
    device: str = "cpu",
    dtype: Any = None,
) -> list[ServedModel]:
    """Load each ``(name, model)`` (``smollm2`` or a model folder) once per folder, with its system prompt.

    Names given the same folder share one loaded model (and so one batching worker). A system prompt for a
    name that is not served is refused, as is a name given twice.
    """
    from ccai.models.backends import TransformersBackend
    from ccai.models.prepare import resolve_model

    system_prompts = dict(system_prompts or {})
    names = [name for name, _ in models]
    if not models:
        raise ValueError("no model to serve: give MODEL or --model NAME=MODEL (e.g. --model base=smollm2)")
    if len(set(names)) != len(names):
        raise ValueError(f"--model: each name may be given once, got {names}")
    if unknown := sorted(set(system_prompts) - set(names)):
        raise ValueError(f"--constitution: no served model named {unknown}; served names are {names}")
    loaded: dict[Path, Any] = {}
    served = []
    for name, spec in models:
        path = resolve_model(spec).resolve()
        if path not in loaded:
            loaded[path] = TransformersBackend(path, device=device, batch_size=1, dtype=dtype)
        served.append(ServedModel(name, loaded[path], system_prompts.get(name, ""), root=str(path)))
    return served


def check_exposure(host: str, api_keys: Sequence[str]) -> None:
    """Refuse to listen beyond this machine without an API key (anyone on the network could use it)."""
    if host not in {"127.0.0.1", "localhost", "::1"} and not any(api_keys):
        raise ValueError(
            f"--host {host}: listening beyond this machine needs an API key; give --api-key KEY or set "
            f"${API_KEY_ENV}"
        )


# -- request bodies ----------------------------------------------------------------------------------
class _TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str | list[_TextPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = ""
    temperature: float = Field(0.7, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = 0
    n: int = Field(1, ge=1, le=1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    stop: str | list[str] | None = None


class _ChatRequest(_Sampling):
    messages: list[_Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int = Field(0, ge=0, le=20)
    continue_final_message: bool = False
    add_generation_prompt: bool = True


class _CompletionRequest(_Sampling):
    prompt: str = Field(min_length=1)
    max_tokens: int = Field(16, ge=0)
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5)


class ApiError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def _raw_error(status: int, message: str, kind: str, code: str, headers: Sequence[tuple[bytes, bytes]] = ()):
    """An ASGI response for the middlewares (before FastAPI has parsed anything)."""
    payload = json.dumps(ApiError(status, message, kind=kind, code=code).body()).encode()

    async def respond(send: Callable) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *headers],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return respond


class _Guard:
    """ASGI middleware: API key check on ``/v1`` and a cap on the request body (read before parsing)."""

    def __init__(self, app: Any, api_keys: Sequence[str], max_body_bytes: int) -> None:
        self.app = app
        self.keys = [k.encode() for k in api_keys if k]
        self.max_body = max_body_bytes
        self.state = getattr(app, "state", None)  # the FastAPI app's state (workers, models) stays reachable

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.keys and scope["path"].startswith("/v1"):
            given = headers.get(b"authorization", b"")
            token = given[7:].strip() if given[:7].lower() == b"bearer " else b""
            if not any(hmac.compare_digest(token, key) for key in self.keys):
                why = "no API key given" if not token else "the API key is not valid"
                return await _raw_error(
                    401,
                    f"{why}: send the header 'Authorization: Bearer <key>' with a key this server was "
                    f"started with (--api-key or ${API_KEY_ENV})",
                    "authentication_error",
                    "invalid_api_key",
                    [(b"www-authenticate", b"Bearer")],
                )(send)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        too_big = _raw_error(
            413,
            f"request body is larger than this server's limit of {self.max_body} bytes; send a shorter "
            "conversation or start the server with a larger --max-body-kb",
            "invalid_request_error",
            "request_too_large",
        )
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return await too_big(send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await too_big(send)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


# -- the app -----------------------------------------------------------------------------------------
def create_app(
    model_dir: str | Path | None = None,
    model_name: str | None = None,
    backend: Any = None,
    *,
    models: Sequence[ServedModel] | None = None,
    api_keys: Sequence[str] = (),
    limits: ServeLimits | None = None,
) -> Any:
    """An ASGI app serving ``models`` (or the one model ``model_dir`` / ``backend`` as ``model_name``).

    Models sharing one backend object share its weights and its batching worker. ``api_keys``: when any is
    given, every ``/v1`` request must carry one. The app's ``state.workers`` maps each backend to its
    :class:`~ccai.models.batching.BatchWorker` (its ``stats`` say which batches ran).
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    limits = limits or ServeLimits()
    if models is None:
        if backend is None:
            if model_dir is None:
                raise ValueError("create_app: give model_dir, backend or models")
            from ccai.models.backends import TransformersBackend

            backend = TransformersBackend(model_dir, batch_size=1)
        root = str(model_dir or getattr(backend, "model_dir", ""))
        models = [ServedModel(model_name or Path(root).name or "model", backend, root=root)]
    served: dict[str, ServedModel] = {}
    for m in models:
        if not m.name or m.name in served:
            raise ValueError(f"served models: name {m.name!r} is empty or given twice; names must be unique")
        served[m.name] = m
    workers: dict[int, BatchWorker] = {}
    for m in served.values():
        if id(m.backend) not in workers:
            workers[id(m.backend)] = BatchWorker(
                m.backend.model,
                m.backend.tokenizer,
                max_batch=limits.max_batch,
                window_s=limits.batch_window_ms / 1000,
                max_queue=limits.max_queue,
            )
    created = int(time.time())

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        for worker in workers.values():
            worker.stop()

    app = FastAPI(title="ccai OpenAI-compatible server", lifespan=lifespan)
    app.state.workers = workers
    app.state.models = served

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
        error = ApiError(400, message + " (see the OpenAI API reference for this field)", param=param)
        return JSONResponse(error.body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = ApiError(
            exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404 else None
        )
        return JSONResponse(error.body(), status_code=exc.status_code)

    def lookup(name: str) -> ServedModel:
        if not name and len(served) == 1:
            return next(iter(served.values()))
        if name not in served:
            raise ApiError(
                404,
                f"model {name!r} is not served here; this server has {sorted(served)} (GET /v1/models)",
                param="model",
                code="model_not_found",
            )
        return served[name]

    def context_length(model: ServedModel) -> int:
        config = getattr(model.backend.model, "config", None)
        return int(getattr(config, "max_position_embeddings", 0) or 0)

    def encode(model: ServedModel, text: str) -> list[int]:
        return list(model.backend.tokenizer(text, add_special_tokens=False)["input_ids"])

    def check_lengths(model: ServedModel, prompt_ids: list[int], max_tokens: int, param: str) -> None:
        if max_tokens > limits.max_tokens:
            raise ApiError(
                400,
                f"max_tokens is {max_tokens}, above this server's limit of {limits.max_tokens}; ask for "
                "fewer or start the server with a larger --max-tokens",
                param="max_tokens",
            )
        window = context_length(model)
        if window and len(prompt_ids) + max_tokens > window:
            raise ApiError(
                400,
                f"this model's context is {window} tokens, but the prompt has {len(prompt_ids)} and "
                f"max_tokens asks for {max_tokens} more; shorten the {param} or lower max_tokens",
                param=param,
                code="context_length_exceeded",
            )

    def no_stop(req: _Sampling) -> None:
        if req.stop:
            raise ApiError(
                400, "stop sequences are not supported by this server; leave 'stop' out", param="stop"
            )

    def worker_of(model: ServedModel) -> BatchWorker:
        return workers[id(model.backend)]

    def overloaded(exc: QueueFull) -> ApiError:
        return ApiError(
            503,
            f"server busy: {exc}; retry after {limits.retry_after_s} s",
            kind="server_error",
            code="overloaded",
            headers={"Retry-After": str(limits.retry_after_s)},
        )

    async def on_worker(submit: Callable[[Callable[[Any], None]], None]) -> Any:
        """Hand work to the model's worker thread and await its result (an error becomes an API error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        try:
            submit(lambda r: loop.call_soon_threadsafe(_settle, future, r))
        except QueueFull as exc:
            raise overloaded(exc) from None
        result = await future
        if isinstance(result, Exception):
            raise _as_api_error(result)
        return result

    async def run_call(model: ServedModel, fn: Callable[[], Any]) -> Any:
        return await on_worker(lambda done: worker_of(model).submit_call(fn, done))

    async def run_job(model: ServedModel, job: GenerationJob) -> GenerationJob:
        return await on_worker(lambda done: worker_of(model).submit_generation(job, done))

    def start_stream(model: ServedModel, job: GenerationJob) -> asyncio.Queue:
        """Submit ``job`` now (so a full queue is a 503, not a broken stream); tokens arrive on the queue."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        job.on_token = lambda event: loop.call_soon_threadsafe(events.put_nowait, ("token", event))
        try:
            worker_of(model).submit_generation(
                job, lambda r: loop.call_soon_threadsafe(events.put_nowait, ("done", r))
            )
        except QueueFull as exc:
            raise overloaded(exc) from None
        return events

    def decode(model: ServedModel, ids: list[int]) -> str:
        return model.backend.tokenizer.decode(ids, skip_special_tokens=True)

    def logprob_entries(model: ServedModel, events: Sequence[TokenEvent]) -> list[dict[str, Any]]:
        tok = model.backend.tokenizer
        return [
            {
                "token": tok.decode([e.token_id]),
                "logprob": e.logprob,
                "top_logprobs": [{"token": tok.decode([t]), "logprob": lp} for t, lp in (e.top or [])],
            }
            for e in events
        ]

    async def stream(
        model: ServedModel,
        job: GenerationJob,
        events: asyncio.Queue,
        chunk: Callable[[str, list[TokenEvent], str | None], dict[str, Any]],
        usage: Callable[[GenerationJob], dict[str, Any]] | None,
    ) -> AsyncIterator[bytes]:
        """Server-sent events: text deltas that join to exactly the non-streamed reply, then ``[DONE]``."""

        def sse(payload: Any) -> bytes:
            return f"data: {json.dumps(payload)}\n\n".encode()

        ids: list[int] = []
        pending: list[TokenEvent] = []
        sent = ""
        try:
            yield sse(chunk("", [], None))
            while True:
                kind, value = await events.get()
                if kind == "token":
                    ids.append(value.token_id)
                    pending.append(value)
                    text = decode(model, ids).lstrip()
                    if text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                        continue
                    visible = text.rstrip()  # trailing spaces wait: the reply is stripped at the end
                    if len(visible) > len(sent) and visible.startswith(sent):
                        yield sse(chunk(visible[len(sent) :], pending, None))
                        sent, pending = visible, []
                    continue
                if isinstance(value, Exception):
                    yield sse(_as_api_error(value).body())
                    break
                final = decode(model, job.token_ids()).strip()
                rest = final[len(sent) :] if final.startswith(sent) else ""
                if rest or pending:
                    yield sse(chunk(rest, pending, None))
                yield sse(chunk("", [], job.finish_reason))
                if usage is not None:
                    yield sse(usage(job))
                break
            yield b"data: [DONE]\n\n"
        finally:
            job.cancelled.set()  # a client that went away stops using the batch

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "models": sorted(served),
            "waiting": {n: worker_of(m).waiting() for n, m in served.items()},
        }

    def model_card(m: ServedModel) -> dict[str, Any]:
        return {
            "id": m.name,
            "object": "model",
            "created": created,
            "owned_by": "ccai",
            "root": m.root,
            "max_model_len": context_length(m) or None,
            "system_prompt": bool(m.system_prompt),
        }

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card(m) for m in served.values()]}

    @app.get("/v1/models/{name:path}")
    def one_model(name: str) -> dict[str, Any]:
        return model_card(lookup(name))

    @app.post("/v1/chat/completions")
    async def chat(req: _ChatRequest) -> Any:
        model = lookup(req.model)
        no_stop(req)
        messages = [{"role": m.role, "content": m.text()} for m in req.messages]
        if model.system_prompt:
            if messages[0]["role"] == "system":
                messages[0] = {
                    "role": "system",
                    "content": model.system_prompt + "\n\n" + messages[0]["content"],
                }
            else:
                messages.insert(0, {"role": "system", "content": model.system_prompt})
        prefix = ""
        if req.continue_final_message:
            if messages[-1]["role"] != "assistant":
                raise ApiError(
                    400, "continue_final_message needs a final assistant message", param="messages"
                )
            prefix = messages.pop()["content"]
        if not any(m["role"] != "system" for m in messages):
            raise ApiError(400, "messages: no user or assistant message to answer", param="messages")
        text = model.backend.render(messages, prefix)
        prompt_ids = encode(model, text)
        max_tokens = req.max_completion_tokens or req.max_tokens or 64
        check_lengths(model, prompt_ids, max_tokens, "messages")
        job = GenerationJob(
            prompt_ids,
            max_tokens,
            temperature=req.temperature,
            top_p=req.top_p,
            seed=req.seed,
            logprobs=req.logprobs,
            top_logprobs=req.top_logprobs if req.logprobs else 0,
        )
        ident, stamp = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def usage_of(j: GenerationJob) -> dict[str, int]:
            return {
                "prompt_tokens": len(prompt_ids),
                "completion_tokens": len(j.tokens),
                "total_tokens": len(prompt_ids) + len(j.tokens),
            }

        def with_stop(j: GenerationJob) -> list[TokenEvent]:
            return [*j.tokens, *([j.stop_event] if j.stop_event is not None else [])]

        if req.stream:
            events = start_stream(model, job)

            def chunk(delta: str, lps: list[TokenEvent], finish: str | None) -> dict[str, Any]:
                delta_body: dict[str, Any] = {"content": delta}
                if not sent_role[0]:
                    delta_body["role"], sent_role[0] = "assistant", True
                if finish is not None:
                    delta_body = {}
                    if req.logprobs and job.stop_event is not None:
                        lps = [job.stop_event]
                return {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": stamp,
                    "model": model.name,
                    "choices": [
                        {
                            "index": 0,
                            "delta": delta_body,
                            "logprobs": {"content": logprob_entries(model, lps)}
                            if req.logprobs and lps
                            else None,
                            "finish_reason": finish,
                        }
                    ],
                }

            sent_role = [False]
            include_usage = bool(req.stream_options and req.stream_options.include_usage)

            def usage_chunk(j: GenerationJob) -> dict[str, Any]:
                return {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": stamp,
                    "model": model.name,
                    "choices": [],
                    "usage": usage_of(j),
                }

            return StreamingResponse(
                stream(model, job, events, chunk, usage_chunk if include_usage else None),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )

        done = await run_job(model, job)
        reply = decode(model, done.token_ids()).strip()
        return {
            "id": ident,
            "object": "chat.completion",
            "created": stamp,
            "model": model.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "logprobs": {"content": logprob_entries(model, with_stop(done))}
                    if req.logprobs
                    else None,
                    "finish_reason": done.finish_reason,
                }
            ],
            "usage": usage_of(done),
        }

    @app.post("/v1/completions")
    async def completions(req: _CompletionRequest) -> Any:
        model = lookup(req.model)
        no_stop(req)
        prompt_ids = encode(model, req.prompt)
        check_lengths(model, prompt_ids, req.max_tokens, "prompt")
        ident, stamp = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        job = GenerationJob(
            prompt_ids, req.max_tokens, temperature=req.temperature, top_p=req.top_p, seed=req.seed
        )
        if req.stream:
            if req.echo or req.logprobs is not None:
                raise ApiError(
                    400, "echo and logprobs are not available with stream; send stream=false", param="stream"
                )
            if req.max_tokens < 1:
                raise ApiError(400, "stream needs max_tokens >= 1", param="max_tokens")
            events = start_stream(model, job)

            def chunk(delta: str, _: list[TokenEvent], finish: str | None) -> dict[str, Any]:
                return {
                    "id": ident,
                    "object": "text_completion",
                    "created": stamp,
                    "model": model.name,
                    "choices": [{"index": 0, "text": delta, "logprobs": None, "finish_reason": finish}],
                }

            return StreamingResponse(
                stream(model, job, events, chunk, None),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        generated, finish = "", "length"
        if req.max_tokens > 0:
            done = await run_job(model, job)
            generated, finish = decode(model, done.token_ids()).strip(), done.finish_reason
        logprobs = None
        if req.logprobs is not None:
            full = req.prompt + generated if req.echo else generated
            tokens, offsets, values = (
                await run_call(model, lambda: model.backend.token_logprobs(full)) if full else ([], [], [])
            )
            logprobs = {
                "tokens": tokens,
                "text_offset": offsets,
                "token_logprobs": values,
                "top_logprobs": None,
            }
        text = req.prompt + generated if req.echo else generated
        completion_tokens = len(encode(model, generated)) if generated else 0
        return {
            "id": ident,
            "object": "text_completion",
            "created": stamp,
            "model": model.name,
            "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": len(prompt_ids),
                "completion_tokens": completion_tokens,
                "total_tokens": len(prompt_ids) + completion_tokens,
            },
        }

    return _Guard(app, api_keys, limits.max_body_bytes)


def _settle(future: asyncio.Future, result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValueError):
        return ApiError(400, str(exc))
    return ApiError(
        500, f"the model failed on this request: {type(exc).__name__}: {exc}", kind="server_error"
    )


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
