"""A lean ASGI path for the one request that comes by the thousand: a well-formed API vote.

FastAPI's routing, dependency solving and validation cost about a millisecond of CPU per request, more
than the vote's single INSERT. This middleware answers ``POST /api/v1/conversations/{id}/votes`` itself
when the request is the ordinary case (JSON, Content-Length at most 4 KiB, a bearer token, a body that
passes the same ``VoteIn`` model), under the same rules (``service.VOTE_RULES``). Everything else (bad
bodies, missing tokens, other content types) is handed, body replayed, to the FastAPI route, so error
messages and the OpenAPI description live in one place. ``WebSettings.fast_votes=False`` turns it off.

On PostgreSQL the votes go through a small pool of async psycopg connections owned by the worker's event
loop (:class:`PgVotes`): no thread hop, never a connection opened per request (a PostgreSQL connection is
a forked backend, the dearest thing on the path), and the votes waiting at one moment share one statement
and one commit. SQLite is synchronous, so there the vote runs in the thread pool through
``service.record_vote``. Either way the insert is committed before the 2xx is sent: an acknowledged vote is
a committed vote.
"""

from __future__ import annotations

import json
import re
import threading

import anyio
import sqlalchemy as sa
from pydantic import ValidationError

from ccai.consultation import service
from ccai.consultation.rules import RuleError
from ccai.consultation.web.pgpool import Batcher, PgPool

PATH = re.compile(r"^/api/v1/conversations/(\d{1,9})/votes$")
MAX_BODY = 4096


class ThreadVotes:
    """Votes through the SQLAlchemy engine in the thread pool (SQLite, or any synchronous driver).

    SQLite has one writer at a time; threads that find the write lock taken sleep in SQLite's busy
    handler, in steps of up to 100 ms, which is what the slowest votes waited for. Queueing them on a
    lock of our own instead hands the database over in order, without the sleeps.
    """

    def __init__(self, engine: sa.Engine):
        self.engine, self.one_writer = engine, threading.Lock()

    def _record(self, *args) -> int:
        with self.one_writer:
            return service.record_vote(self.engine, *args)

    async def record(self, conversation_id: int, token: str, number: int, vote: int, important: bool) -> int:
        return await anyio.to_thread.run_sync(self._record, conversation_id, token, number, vote, important)


class PgVotes:
    """Votes on at most ``size`` async psycopg connections (autocommit) kept by this worker's event loop.

    Votes that arrive while the connections are busy are written together (:class:`Batcher`): each free
    connection takes every vote waiting at that moment and runs ``service.VOTE_BATCH`` on them, one
    statement and one commit for the lot (compiled once for psycopg, prepared by psycopg after a few
    uses). Each request is answered once that commit returns, so an acknowledged vote is still a committed
    vote. A vote the rules refuse gets its reason from the synchronous engine (the rare path).
    """

    def __init__(self, engine: sa.Engine, size: int = 4):
        compiled = service.VOTE_BATCH.compile(dialect=engine.dialect)
        self.engine, self.pool = engine, PgPool(engine, size)
        columns = ("cid", "token_hash", "number", "vote", "important", "now")
        self.batcher = Batcher(self.pool, str(compiled), columns, compiled.params)

    async def record(self, conversation_id: int, token: str, number: int, vote: int, important: bool) -> int:
        params = service.vote_params(conversation_id, token, number, vote, important)
        rows = await self.batcher.run(params)
        if not rows:
            await anyio.to_thread.run_sync(self._explain, conversation_id, token, number)
        return rows[0][0]

    def _explain(self, conversation_id: int, token: str, number: int) -> None:
        with self.engine.connect() as conn:
            service.explain_vote(conn, conversation_id, token, number)


class VoteFastPath:
    def __init__(self, app, engine: sa.Engine, model, connections: int = 4, limiter=None):
        self.app, self.model, self.limiter = app, model, limiter
        postgres = engine.dialect.name == "postgresql"
        self.votes = PgVotes(engine, connections) if postgres else ThreadVotes(engine)

    async def __call__(self, scope, receive, send):
        match = PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        token = _plain_vote_token(scope) if match and scope["method"] == "POST" else None
        if token is None:
            return await self.app(scope, receive, send)
        body = await _read(receive, MAX_BODY)
        try:
            vote = self.model.model_validate_json(body)
        except ValidationError:  # let the full route explain what is wrong
            return await self.app(scope, _replay(body, receive), send)
        try:
            if self.limiter is not None:  # the same per-participant and per-address vote limits
                client = scope.get("client") or ("-", 0)
                await self.limiter.avote(client[0], token)  # with Redis: one async round trip
            vote_id = await self.votes.record(
                int(match.group(1)), token, vote.statement, vote.vote, vote.important
            )
        except RuleError as exc:
            retry = {"Retry-After": str(exc.values["wait"])} if "wait" in exc.values else {}
            return await _json(send, exc.status, {"detail": exc.message, "code": exc.code}, retry)
        await _json(send, 201, {"id": vote_id})


def _plain_vote_token(scope) -> str | None:
    """The bearer token of an ordinary vote request (JSON, small declared body), else None."""
    headers = dict(scope["headers"])
    length = headers.get(b"content-length", b"")
    auth = headers.get(b"authorization", b"")
    plain_json = headers.get(b"content-type", b"").split(b";")[0].strip() == b"application/json"
    if not (plain_json and length.isdigit() and int(length) <= MAX_BODY and auth[:7].lower() == b"bearer "):
        return None
    token = auth[7:].decode("latin-1").strip()
    return token if 0 < len(token) <= 64 else None


async def _read(receive, length: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body") or size > length:
            return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _json(send, status: int, payload: dict, extra: dict | None = None) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
