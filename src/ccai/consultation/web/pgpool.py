"""A few async psycopg connections (autocommit) kept by one worker's event loop, for the fast paths.

A PostgreSQL connection is a forked backend, the dearest thing on a hot path, so the fast vote and
next-statement paths (``fastvote.py``, ``fastnext.py``) never open one per request and never hop to a
thread to use SQLAlchemy's synchronous pool. The pool starts afresh when it finds itself on another event
loop (a test client may run each request on a new loop).
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa


class PgPool:
    """At most ``size`` connections; a request that finds none free waits for one."""

    def __init__(self, engine: sa.Engine, size: int = 4):
        self.dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.size = size
        self.loop: asyncio.AbstractEventLoop | None = None
        self.conns: list = []

    def on_this_loop(self) -> bool:
        """Make the pool belong to the running loop; True when it was started afresh."""
        if self.loop is asyncio.get_running_loop():
            return False
        for conn in self.conns:
            conn.pgconn.finish()
        self.loop, self.conns, self.opened = asyncio.get_running_loop(), [], 0
        self.idle: asyncio.Queue = asyncio.Queue()  # free connections; None is a free slot to reopen
        return True

    async def acquire(self):
        self.on_this_loop()
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            return await self._open()
        conn = await self.idle.get()
        return conn if conn is not None else await self._open()

    async def _open(self):
        import psycopg

        try:
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        except BaseException:
            self.idle.put_nowait(None)  # the slot stays; the next request tries again
            raise
        self.conns.append(conn)
        return conn

    def release(self, conn, healthy: bool) -> None:
        """Give ``conn`` back; an unhealthy one (its state unknown after an error) is closed."""
        if healthy and not conn.closed:
            self.idle.put_nowait(conn)
            return
        conn.pgconn.finish()
        if conn in self.conns:
            self.conns.remove(conn)
        self.idle.put_nowait(None)


class Batcher:
    """Requests for the same statement that wait at one moment share one round trip.

    ``sql`` takes each of ``columns`` as an array (one element per request, in arrival order) and returns
    rows whose first column is the request's 1-based position; :meth:`run` answers each request with its
    own rows (the rest of each row). While the pool's connections are busy, requests pile up and the next
    free connection takes all of them: under load, one statement (and for a write, one commit) serves
    many requests; alone, a request costs one round trip as before.
    """

    def __init__(self, pool: PgPool, sql: str, columns: tuple[str, ...], constants: dict | None = None):
        self.pool, self.sql, self.columns, self.constants = pool, sql, columns, dict(constants or {})
        self.loop: asyncio.AbstractEventLoop | None = None

    async def run(self, params: dict) -> list[tuple]:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop, self.waiting, self.flushers = loop, [], set()
        answer = loop.create_future()
        self.waiting.append((params, answer))
        flusher = loop.create_task(self._flush())  # one per request; it may find its request served
        self.flushers.add(flusher)  # keep a reference until done (the loop holds tasks weakly)
        flusher.add_done_callback(self.flushers.discard)
        return await answer

    async def _flush(self) -> None:
        try:
            conn = await self.pool.acquire()
        except Exception as exc:  # every waiting request gets the failure (a 500)
            self.waiting = _fail(self.waiting, exc)
            return
        batch, self.waiting = self.waiting, []
        if not batch:
            return self.pool.release(conn, True)
        params = dict(self.constants)
        for name in self.columns:
            params[name] = [p[name] for p, _ in batch]
        try:
            rows = await (await conn.execute(self.sql, params)).fetchall()
        except BaseException as exc:  # the connection's state is unknown: drop it
            self.pool.release(conn, False)
            _fail(batch, exc if isinstance(exc, Exception) else RuntimeError("the statement was cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        self.pool.release(conn, True)
        by_position: dict[int, list[tuple]] = {}
        for row in rows:
            by_position.setdefault(row[0], []).append(tuple(row[1:]))
        for i, (_params, answer) in enumerate(batch, start=1):
            if not answer.done():
                answer.set_result(by_position.get(i, []))


def _fail(batch: list[tuple[dict, asyncio.Future]], exc: Exception) -> list:
    """Answer every request of ``batch`` with ``exc``; returns an empty batch."""
    for _params, answer in batch:
        if not answer.done():
            answer.set_exception(exc)
    return []
