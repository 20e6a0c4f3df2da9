"""A lean ASGI path for the request every participant makes between two votes: the next statement.

``GET /api/v1/conversations/{id}/next`` through FastAPI costs a dependency chain, three or four queries on
a thread and the routing cache's catch-up with the vote log, all inside the request. Here a request costs
one query and a draw from arrays already in memory:

- one round trip (PostgreSQL: an async psycopg connection of this worker's loop, shared by the requests
  waiting at that moment, :class:`pgpool.Batcher`; SQLite: the thread pool) reads the conversation's
  settings, the participant behind the bearer token and the statements they have voted on (an index
  range on ``(participant_id, statement_id)``);
- the statement list and the agree/disagree/seen counters come from a :class:`Snapshot` of the worker's
  routing cache (``routing.py``), with each statement's number and text. A snapshot is refreshed off the
  request path, in a thread, at most every ``REFRESH_S``: counters may lag the vote log by that much
  (they only weight the draw). A request whose conversation row shows a newer ``statements_version`` than
  its snapshot (a statement added, moderated, reworded) waits for a fresh one, so nobody is ever routed to
  a statement that was rejected, nor misses a new one.

The draw is :func:`rules.choose_index` with :func:`rules.routing_rng`, as ``service.progress`` does, so
both paths route alike. Anything unusual (no token, unknown participant or conversation, not eligible)
is handed to the FastAPI route, which owns the error messages. ``WebSettings.fast_next=False`` turns
this off.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass

import anyio
import numpy as np
import sqlalchemy as sa

from ccai.consultation import rules
from ccai.consultation.routing import RoutingCache
from ccai.consultation.store import Conversation, Participant, Statement, Vote, token_digest
from ccai.consultation.web.pgpool import Batcher, PgPool

PATH = re.compile(r"^/api/v1/conversations/(\d{1,9})/next$")
REFRESH_S = 0.25  # how stale the counters may get before a background refresh starts

# per request: conversation, participant and the statements they voted on; the requests waiting at one
# moment share one round trip (pgpool.Batcher: arrays in, rows tagged with each request's position out)
PG_LOOKUP = """
SELECT r.i, c.is_open, c.strict_moderation, c.seed_first, c.unlock_threshold, c.statements_version,
       c.created_ms,
       p.id, p.eligible,
       ARRAY(SELECT DISTINCT v.statement_id FROM votes v WHERE v.participant_id = p.id)
FROM unnest(%(cid)s::integer[], %(token_hash)s::varchar[]) WITH ORDINALITY AS r(cid, token_hash, i)
JOIN conversations c ON c.id = r.cid
LEFT JOIN participants p ON p.conversation_id = c.id AND p.token_hash = r.token_hash
"""


@dataclass(frozen=True)
class Snapshot:
    """One conversation's routing arrays at one moment, aligned by position; never changed once made."""

    version: int
    born: int  # the conversation's created_ms (SQLite gives a deleted conversation's id to the next one)
    taken: float
    ids: np.ndarray
    numbers: np.ndarray
    texts: list[str]
    is_seed: np.ndarray
    is_meta: np.ndarray
    visible_strict: np.ndarray
    visible_open: np.ndarray
    agree: np.ndarray
    disagree: np.ndarray
    seen: np.ndarray
    weights: np.ndarray  # rules.routing_weights of the counters above, computed once per snapshot
    position: dict[int, int]  # statement id -> index


def take_snapshot(
    engine: sa.Engine, cache: RoutingCache, cid: int, previous: Snapshot | None
) -> Snapshot | None:
    """Bring the routing cache up to date and copy it (texts re-read only when the statements changed)."""
    from sqlalchemy.orm import Session

    with Session(engine) as db:
        conversation = db.get(Conversation, cid)
        if conversation is None:
            return None
        born = conversation.created_ms
        state = cache.get(db, conversation)
        with state.lock:
            version, ids = state.version, state.ids.copy()
            arrays = {
                name: getattr(state, name).copy()
                for name in (
                    "is_seed",
                    "is_meta",
                    "visible_strict",
                    "visible_open",
                    "agree",
                    "disagree",
                    "seen",
                )
            }
        same = previous is not None and previous.born == born and previous.version == version
        if same and np.array_equal(previous.ids, ids):
            numbers, texts = previous.numbers, previous.texts
        else:
            rows = db.execute(
                sa.select(Statement.id, Statement.number, Statement.text).where(
                    Statement.conversation_id == cid
                )
            )
            by_id = {sid: (number, text) for sid, number, text in rows}
            numbers = np.array([by_id.get(int(i), (-1, ""))[0] for i in ids], np.int64)
            texts = [by_id.get(int(i), (-1, ""))[1] for i in ids]
    weights = rules.routing_weights(arrays["agree"], arrays["disagree"], arrays["seen"], arrays["is_meta"])
    if previous is not None and numbers is previous.numbers:  # the same statements as before
        position = previous.position
    else:
        position = {int(sid): k for k, sid in enumerate(ids)}
    return Snapshot(
        version, born, time.monotonic(), ids, numbers, texts, **arrays, weights=weights, position=position
    )


@dataclass(frozen=True)
class Asker:
    """What one request's lookup found: the conversation's settings and the participant (None: unknown)."""

    is_open: bool
    strict: bool
    seed_first: bool
    unlock_threshold: int
    version: int
    born: int
    participant_id: int | None
    eligible: bool | None
    voted: list[int]


def lookup_sync(engine: sa.Engine, cid: int, token_hash: str) -> Asker | None:
    """The lookup through SQLAlchemy (SQLite, or any synchronous driver), in the thread pool."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                Conversation.is_open,
                Conversation.strict_moderation,
                Conversation.seed_first,
                Conversation.unlock_threshold,
                Conversation.statements_version,
                Conversation.created_ms,
                Participant.id,
                Participant.eligible,
            )
            .select_from(Conversation)
            .outerjoin(
                Participant,
                (Participant.conversation_id == Conversation.id) & (Participant.token_hash == token_hash),
            )
            .where(Conversation.id == cid)
        ).first()
        if row is None:
            return None
        voted = []
        if row.id is not None:
            voted = list(
                conn.scalars(sa.select(Vote.statement_id).where(Vote.participant_id == row.id).distinct())
            )
    return Asker(*row, voted)


class NextFastPath:
    def __init__(self, app, engine: sa.Engine, cache: RoutingCache, seed: int = 0, connections: int = 4):
        self.app, self.engine, self.cache, self.seed = app, engine, cache, seed
        self.lookups = None
        if engine.dialect.name == "postgresql":
            self.lookups = Batcher(PgPool(engine, connections), PG_LOOKUP, ("cid", "token_hash"))
        self.snapshots: dict[int, Snapshot] = {}
        self.pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Task]] = {}

    async def __call__(self, scope, receive, send):
        match = PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        token = _bearer(scope) if match and scope["method"] == "GET" else None
        if token is None:
            return await self.app(scope, receive, send)
        cid = int(match.group(1))
        asker = await self._lookup(cid, token_digest(token))
        if asker is None or asker.participant_id is None or asker.eligible is not True:
            return await self.app(scope, receive, send)  # the route explains (404, 403)
        snap = await self._snapshot(cid, asker.version, asker.born)
        if snap is None:
            return await self.app(scope, receive, send)
        await _json(send, answer(snap, asker, cid, self.seed))

    async def _lookup(self, cid: int, token_hash: str) -> Asker | None:
        if self.lookups is None:
            return await anyio.to_thread.run_sync(lookup_sync, self.engine, cid, token_hash)
        rows = await self.lookups.run({"cid": cid, "token_hash": token_hash})
        return Asker(*rows[0][:8], list(rows[0][8])) if rows else None

    async def _snapshot(self, cid: int, version: int, born: int) -> Snapshot | None:
        """A snapshot at least as new as ``version``, of this very conversation (``born``: its
        created_ms); refreshed in the background when merely old."""
        snap = self.snapshots.get(cid)
        if snap is not None and snap.born == born and snap.version >= version:
            if time.monotonic() - snap.taken <= REFRESH_S:
                return snap
            if REFRESH_S > 0:  # (0: every request waits for fresh counters; the tests' exact mode)
                self._refresh(cid)  # not awaited: this request uses the counters it has
                return snap
        for _try in range(3):
            snap = await asyncio.shield(self._refresh(cid))
            if snap is None or (snap.born == born and snap.version >= version):
                return snap
        return None

    def _refresh(self, cid: int) -> asyncio.Task:
        """The refresh in flight for ``cid`` on this loop, or a new one."""
        loop = asyncio.get_running_loop()
        running = self.pending.get(cid)
        if running is not None and running[0] is loop and not running[1].done():
            return running[1]

        async def refresh() -> Snapshot | None:
            previous = self.snapshots.get(cid)
            snap = await anyio.to_thread.run_sync(take_snapshot, self.engine, self.cache, cid, previous)
            if snap is None:
                self.snapshots.pop(cid, None)
            else:
                self.snapshots[cid] = snap
            return snap

        task = loop.create_task(refresh())
        self.pending[cid] = (loop, task)
        return task


def answer(snap: Snapshot, asker: Asker, cid: int, seed: int) -> dict:
    """The ``Next`` body (api.py) for this participant: the draw of ``service.progress`` on ``snap``."""
    voted = asker.voted
    visible = snap.visible_strict if asker.strict else snap.visible_open
    pool = visible.copy()
    pool[[snap.position[sid] for sid in voted if sid in snap.position]] = False
    rng = rules.routing_rng(cid, asker.participant_id, len(voted), seed)
    k = rules.choose_index(
        pool,
        snap.is_seed,
        snap.agree,
        snap.disagree,
        snap.seen,
        snap.is_meta,
        asker.seed_first,
        rng,
        weights=snap.weights,
    )
    threshold = rules.effective_threshold(asker.unlock_threshold, int(visible.sum()))
    statement = None
    if k is not None:
        statement = {"id": int(snap.numbers[k]), "text": snap.texts[k], "is_meta": bool(snap.is_meta[k])}
    return {
        "statement": statement,
        "remaining": int(pool.sum()),
        "votes_cast": len(voted),
        "can_write": bool(asker.is_open and len(voted) >= threshold),
        "votes_to_unlock": max(0, threshold - len(voted)),
    }


def _bearer(scope) -> str | None:
    auth = dict(scope["headers"]).get(b"authorization", b"")
    if auth[:7].lower() != b"bearer ":
        return None
    token = auth[7:].decode("latin-1").strip()
    return token if 0 < len(token) <= 64 else None


async def _json(send, payload: dict) -> None:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
