"""Vote throughput, latency and durability of the consultation server, on SQLite and PostgreSQL.

For each database: a fresh schema (Alembic), one conversation with statements and participants, then a
real ``uvicorn`` server (the app ``ccai serve`` runs) on a loopback port and C concurrent keep-alive
clients posting ``POST /api/v1/conversations/{id}/votes`` for D seconds. Printed: votes/s and p50/p99
latency, next to a baseline of the same inserts straight through SQLAlchemy (one transaction per vote,
C threads) measured in the same run, and their ratio.

Durability: the server is then killed with SIGKILL in the middle of a second load; every vote that got
a 2xx answer must be in the database afterwards (the count lost is printed, and must be 0).

    python bench/votes.py                       # both databases, 5 s each
    python bench/votes.py --db postgres --seconds 10 --clients 64 --workers 2

Goal (issue 3): >= 1,500 votes/s with p99 <= 50 ms on PostgreSQL on 2 cores.

Journey mode (issue 11): N participants each fetch their next statement (``GET .../next``) and vote on it,
again and again, on a conversation of CCAI's size (1,418 statements, 38k votes) or bigger
(``--statements 10000 --votes 1000000``). The same data is served three times in the same run: with the
per-worker routing cache and with the old path that recounts every vote per request
(``CCAI_ROUTING_CACHE=0``), and with the direct ASGI path for ``/next`` (``web/fastnext.py``, the
default). Printed: journeys/s, next-statement p50/p99, journey p99 and CPU per journey, for each.

    python bench/votes.py --journey --db postgres --workers 2 --clients 8 --seconds 10

Goal (issue 11): next-statement p99 <= 20 ms and >= 500 journeys/s on PostgreSQL with 2 workers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ccai.consultation import accounts, service, store
from ccai.consultation.store import Vote

POSTGRES_URL = os.environ.get("CCAI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
N_STATEMENTS = 200


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # vote ids answered 2xx
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = float("nan")  # server processes + this database's PostgreSQL backends
    client_cpu_seconds: float = float("nan")  # the load generator (this process)

    def summary(self) -> dict[str, float]:
        lat = np.asarray(self.latencies) * 1000
        return {
            "votes": len(self.acked),
            "votes_per_s": len(self.acked) / self.seconds if self.seconds else 0,
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
            "cpu_us_per_vote": self.cpu_seconds / max(len(self.acked), 1) * 1e6,
            "client_cpu_us_per_vote": self.client_cpu_seconds / max(len(self.acked), 1) * 1e6,
        }


def stack_cpu_seconds(server_pid: int | None, database: str) -> float:
    """CPU time used so far by the server's process group and the backends serving ``database``.

    The machine may be shared, so votes/s alone says more about the neighbours than about the code;
    CPU per vote does not depend on them. Linux only (``/proc``); NaN elsewhere.
    """
    if not Path("/proc").is_dir():
        return float("nan")
    ticks, seen = 0, server_pid is None  # no server: the backends alone (none for SQLite)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ours = (server_pid is not None and os.getpgid(int(entry.name)) == server_pid) or (
                command.startswith("postgres:") and f" {database} " in command
            )
        except OSError:
            continue
        if ours:
            fields = stat.rsplit(")", 1)[1].split()
            ticks, seen = ticks + int(fields[11]) + int(fields[12]), True
    return ticks / os.sysconf("SC_CLK_TCK") if seen else float("nan")


# ---------------------------------------------------------------- databases


def fresh_database(kind: str, folder: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'bench.sqlite3'}", lambda: None
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"ccai_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False), drop


def prepare(url: str, participants: int) -> tuple[int, list[str], list[int]]:
    """A conversation with N statements and ``participants`` joined participants; returns their tokens."""
    engine = store.make_engine(url)
    store.migrate(engine)
    with Session(engine) as db:
        owner = accounts.create_user(db, f"bench-{uuid.uuid4().hex[:6]}@example.org", "benchmark", "owner")
        conversation = service.create_conversation(db, owner, {"topic": "bench"})
        for i in range(N_STATEMENTS):
            service.add_seed(db, conversation, f"bench statement {i}")
        tokens = [service.new_token() for _ in range(participants)]
        ids = [service.join(db, conversation, token).id for token in tokens]
        db.commit()
        cid = conversation.id
    engine.dispose()
    return cid, tokens, ids


# ---------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url: str, port: int, workers: int, extra_env: dict | None = None) -> subprocess.Popen:
    env = (
        os.environ
        | {
            "DATABASE_URL": url,
            "CCAI_SECRET_KEY": "bench-" + "k" * 40,
            "CCAI_NEAR_DUPLICATES": "0",
            "CCAI_LIMITS": "off",  # each load-generating participant votes far faster than a person may
        }
        | (extra_env or {})
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "ccai.consultation.web.server:app_from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                time.sleep(0.5 if workers > 1 else 0.1)  # let every worker come up
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("the server exited during start-up") from None
            time.sleep(0.1)
    raise RuntimeError("the server did not start within 60 s")


def kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


# ---------------------------------------------------------------- load (a minimal keep-alive HTTP/1.1 client)


async def client(port: int, cid: int, token: str, stop: asyncio.Event, load: Load, rng: np.random.Generator):
    """One participant voting as fast as the server answers, on one keep-alive connection."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        load.errors["connect"] = load.errors.get("connect", 0) + 1
        return
    head = (
        f"POST /api/v1/conversations/{cid}/votes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    ).encode()
    try:
        while not stop.is_set():
            body = json.dumps(
                {"statement": int(rng.integers(N_STATEMENTS)), "vote": int(rng.integers(-1, 2))}
            ).encode()
            started = time.perf_counter()
            writer.write(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("closed")
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            payload = await reader.readexactly(length)
            status = int(status_line.split()[1])
            if 200 <= status < 300:
                load.latencies.append(time.perf_counter() - started)
                load.acked.append(json.loads(payload)["id"])
            else:
                load.errors[str(status)] = load.errors.get(str(status), 0) + 1
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        load.errors["disconnected"] = load.errors.get("disconnected", 0) + 1
    finally:
        writer.close()


async def run_load(
    port: int,
    cid: int,
    tokens: list[str],
    seconds: float,
    kill_after: float | None = None,
    process: subprocess.Popen | None = None,
    database: str = "",
) -> Load:
    load, stop = Load(), asyncio.Event()
    tasks = [
        asyncio.create_task(client(port, cid, t, stop, load, np.random.default_rng(i)))
        for i, t in enumerate(tokens)
    ]
    started = time.perf_counter()
    cpu_before = stack_cpu_seconds(process.pid, database) if process and kill_after is None else 0.0
    client_before = time.process_time()
    if kill_after is not None:
        await asyncio.sleep(kill_after)
        kill(process)
        await asyncio.sleep(0.2)
    else:
        await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    load.seconds = time.perf_counter() - started
    load.client_cpu_seconds = time.process_time() - client_before
    if process is not None and kill_after is None:
        load.cpu_seconds = stack_cpu_seconds(process.pid, database) - cpu_before
    return load


# ---------------------------------------------------------------- baseline: the same inserts, no HTTP


def baseline(
    url: str, cid: int, participant_ids: list[int], statement_ids: list[int], seconds: float, threads: int
) -> Load:
    """One transaction per vote through SQLAlchemy Core, ``threads`` at a time, for ``seconds``."""
    engine = (
        store.make_engine(url, pool_size=threads, max_overflow=0)
        if not url.startswith("sqlite")
        else store.make_engine(url)
    )
    load, stop, lock = Load(), threading.Event(), threading.Lock()

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        insert = sa.insert(Vote).returning(Vote.id)
        while not stop.is_set():
            row = {
                "conversation_id": cid,
                "participant_id": participant_ids[seed % len(participant_ids)],
                "statement_id": statement_ids[int(rng.integers(len(statement_ids)))],
                "vote": int(rng.integers(-1, 2)),
                "important": False,
                "created_ms": store.now_ms(),
            }
            started = time.perf_counter()
            with engine.begin() as conn:
                vote_id = conn.execute(insert, row).scalar_one()
            with lock:
                load.latencies.append(time.perf_counter() - started)
                load.acked.append(vote_id)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    database = sa.make_url(url).database if not url.startswith("sqlite") else "-"
    started, cpu_before = time.perf_counter(), time.process_time() + stack_cpu_seconds(None, database)
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    load.seconds = time.perf_counter() - started
    load.cpu_seconds = time.process_time() + stack_cpu_seconds(None, database) - cpu_before
    engine.dispose()
    return load


def missing_votes(url: str, acked: list[int]) -> int:
    engine = store.make_engine(url)
    with engine.connect() as conn:
        present = (
            set(conn.execute(sa.select(Vote.id).where(Vote.id.in_(acked))).scalars()) if acked else set()
        )
    engine.dispose()
    return len(set(acked) - present)


def shared_limits(args) -> dict:
    """``--redis-limits URL``: the vote limits on (set too high to refuse anything) and counted in Redis, as
    several servers would count them, so the cost of a shared limit check per vote is in the figures."""
    if not args.redis_limits:
        return {}
    return {
        "CCAI_REDIS_URL": args.redis_limits,
        "CCAI_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "CCAI_LIMITS": "votes_per_participant=10000000/60,votes_per_ip=10000000/60",
    }


def bench(kind: str, args) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"ccai-bench-{kind}-"))
    url, drop = fresh_database(kind, folder)
    try:
        cid, tokens, participant_ids = prepare(url, args.clients)
        engine = store.make_engine(url)
        with engine.connect() as conn:
            statement_ids = list(
                conn.execute(sa.text(f"select id from statements where conversation_id = {cid}")).scalars()
            )
        engine.dispose()
        workers = args.workers if kind == "postgres" else 1
        port = free_port()
        server = start_server(url, port, workers, shared_limits(args))
        try:
            asyncio.run(run_load(port, cid, tokens, 1.0))  # warm-up: connections, caches
            database = sa.make_url(url).database if kind == "postgres" else "-"
            served = asyncio.run(run_load(port, cid, tokens, args.seconds, process=server, database=database))
        finally:
            kill(server)
        direct = baseline(url, cid, participant_ids, statement_ids, args.seconds, min(args.clients, 16))
        port = free_port()
        server = start_server(url, port, workers)
        crashed = asyncio.run(run_load(port, cid, tokens, 0, kill_after=args.kill_after, process=server))
        lost = missing_votes(url, crashed.acked)
        return {
            "db": kind,
            "workers": workers,
            "clients": args.clients,
            "server": served.summary(),
            "server_errors": served.errors,
            "baseline": direct.summary(),
            "ratio": served.summary()["votes_per_s"] / max(direct.summary()["votes_per_s"], 1e-9),
            "kill_acked": len(crashed.acked),
            "kill_lost": lost,
        }
    finally:
        drop()


# ---------------------------------------------------------------- journey mode: next statement, then vote


def prepare_journey(url: str, n_statements: int, n_votes: int, participants: int, seed: int = 0):
    """A conversation of ``n_statements`` accepted statements and ``n_votes`` votes by background voters
    (about 35 votes each, as in CCAI), written in bulk; plus ``participants`` fresh joined tokens."""
    engine = store.make_engine(url)
    store.migrate(engine)
    rng = np.random.default_rng(seed)
    with Session(engine) as db:
        owner = accounts.create_user(db, f"bench-{uuid.uuid4().hex[:6]}@example.org", "benchmark", "owner")
        conversation = service.create_conversation(db, owner, {"topic": "journey bench"})
        cid = conversation.id
        now = store.now_ms()
        db.execute(
            sa.insert(store.Statement),
            [
                {
                    "conversation_id": cid,
                    "number": i,
                    "text": f"journey statement {i}",
                    "original_text": f"journey statement {i}",
                    "text_key": f"{i:064d}",
                    "moderation": 1,
                    "mod_reason": "",
                    "extra": "",
                    "is_seed": True,
                    "is_meta": False,
                    "created_ms": now,
                }
                for i in range(n_statements)
            ],
        )
        voters = max(1, n_votes // 35)
        db.execute(
            sa.insert(store.Participant),
            [
                {"conversation_id": cid, "number": i, "eligible": True, "created_ms": now}
                for i in range(voters)
            ],
        )
        pids = np.array(
            db.scalars(sa.select(store.Participant.id).where(store.Participant.conversation_id == cid)).all()
        )
        sids = np.array(
            db.scalars(sa.select(store.Statement.id).where(store.Statement.conversation_id == cid)).all()
        )
        for start in range(0, n_votes, 50_000):
            size = min(50_000, n_votes - start)
            db.execute(
                sa.insert(Vote),
                [
                    {
                        "conversation_id": cid,
                        "participant_id": int(p),
                        "statement_id": int(st),
                        "vote": int(v),
                        "important": False,
                        "created_ms": now,
                    }
                    for p, st, v in zip(
                        rng.choice(pids, size), rng.choice(sids, size), rng.integers(-1, 2, size), strict=True
                    )
                ],
            )
        tokens = [service.new_token() for _ in range(participants)]
        for token in tokens:
            service.join(db, conversation, token)
        db.commit()
    if engine.dialect.name == "postgresql":  # what autovacuum would do after a bulk load, before the clock
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return cid, tokens


@dataclass
class Journeys:
    next_latencies: list[float] = field(default_factory=list)
    journey_latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        nxt, jour = np.asarray(self.next_latencies) * 1000, np.asarray(self.journey_latencies) * 1000
        return {
            "journeys": len(jour),
            "journeys_per_s": len(jour) / self.seconds if self.seconds else 0,
            "next_p50_ms": float(np.percentile(nxt, 50)) if len(nxt) else float("nan"),
            "next_p99_ms": float(np.percentile(nxt, 99)) if len(nxt) else float("nan"),
            "journey_p99_ms": float(np.percentile(jour, 99)) if len(jour) else float("nan"),
        }


async def _request(reader, writer, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    writer.write(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return int(status_line.split()[1]), await reader.readexactly(length)


async def journey_client(port: int, cid: int, token: str, stop: asyncio.Event, out: Journeys):
    """One participant: fetch the next statement, vote on it, repeat (one keep-alive connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
    get_next = f"GET /api/v1/conversations/{cid}/next HTTP/1.1\r\n{auth}".encode()
    post_vote = f"POST /api/v1/conversations/{cid}/votes HTTP/1.1\r\n{auth}Content-Type: application/json\r\n"
    try:
        while not stop.is_set():
            started = time.perf_counter()
            status, payload = await _request(reader, writer, get_next)
            fetched = time.perf_counter()
            if status != 200:
                out.errors[f"next {status}"] = out.errors.get(f"next {status}", 0) + 1
                continue
            statement = json.loads(payload)["statement"]
            if statement is None:
                out.errors["exhausted"] = out.errors.get("exhausted", 0) + 1
                return
            body = json.dumps({"statement": statement["id"], "vote": 1}).encode()
            status, _ = await _request(reader, writer, post_vote.encode(), body)
            if status != 201:
                out.errors[f"vote {status}"] = out.errors.get(f"vote {status}", 0) + 1
                continue
            out.next_latencies.append(fetched - started)
            out.journey_latencies.append(time.perf_counter() - started)
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        out.errors["disconnected"] = out.errors.get("disconnected", 0) + 1
    finally:
        writer.close()


async def run_journeys(port: int, cid: int, tokens: list[str], seconds: float) -> Journeys:
    out, stop = Journeys(), asyncio.Event()
    tasks = [asyncio.create_task(journey_client(port, cid, t, stop, out)) for t in tokens]
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    out.seconds = time.perf_counter() - started
    return out


def journey_bench(kind: str, args) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"ccai-journey-{kind}-"))
    url, drop = fresh_database(kind, folder)
    try:
        made = time.perf_counter()
        modes = [m for m in JOURNEY_MODES if m in args.modes.split(",")]
        cid, tokens = prepare_journey(url, args.statements, args.votes, 2 * len(modes) * args.clients)
        print(
            f"# {kind}: {args.statements} statements, {args.votes} votes, "
            f"prepared in {time.perf_counter() - made:.0f} s"
        )
        workers = args.workers if kind == "postgres" else 1
        results = {}
        for k, name in enumerate(modes):
            port = free_port()
            server = start_server(url, port, workers, JOURNEY_MODES[name])
            try:
                mine = tokens[2 * k * args.clients : (2 * k + 1) * args.clients]
                warm = tokens[(2 * k + 1) * args.clients : (2 * k + 2) * args.clients]
                asyncio.run(run_journeys(port, cid, warm, 1.0))  # warm-up: connections, caches
                database = sa.make_url(url).database if kind == "postgres" else "-"
                cpu, client_cpu = stack_cpu_seconds(server.pid, database), time.process_time()
                done = asyncio.run(run_journeys(port, cid, mine, args.seconds))
                cpu = stack_cpu_seconds(server.pid, database) - cpu
                client_cpu = time.process_time() - client_cpu
            finally:
                kill(server)
            n = max(len(done.journey_latencies), 1)
            results[name] = done.summary() | {
                "errors": done.errors,
                "cpu_ms_per_journey": cpu / n * 1000,
                "client_cpu_ms_per_journey": client_cpu / n * 1000,
            }
        return {"db": kind, "workers": workers, "clients": args.clients, **results}
    finally:
        drop()


# how /next is served: recount every vote per request (before issue 11), the per-worker routing cache
# behind FastAPI, the direct ASGI path on snapshots of that cache (web/fastnext.py)
JOURNEY_MODES = {
    "recount": {"CCAI_ROUTING_CACHE": "0", "CCAI_FAST_NEXT": "0"},
    "cache": {"CCAI_ROUTING_CACHE": "1", "CCAI_FAST_NEXT": "0"},
    "fast": {"CCAI_ROUTING_CACHE": "1", "CCAI_FAST_NEXT": "1"},
}


def journey_main(args) -> None:
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rows = []
    print(f"{'db':9} {'routing':8} {'journeys/s':>10} {'next p50':>9} {'next p99':>9} {'journey p99':>12}")
    for kind in kinds:
        r = journey_bench(kind, args)
        rows.append(r)
        for name in (m for m in JOURNEY_MODES if m in r):
            s = r[name]
            print(
                f"{kind:9} {name:8} {s['journeys_per_s']:10.1f} {s['next_p50_ms']:9.1f} "
                f"{s['next_p99_ms']:9.1f} {s['journey_p99_ms']:12.1f}   {r['clients']} participants, "
                f"{r['workers']} worker(s), {s['cpu_ms_per_journey']:.1f} ms CPU per journey "
                f"(server{' + PostgreSQL' if kind == 'postgres' else ''}) + "
                f"{s['client_cpu_ms_per_journey']:.1f} ms load generator, errors {s['errors'] or 'none'}"
            )
            cores = os.cpu_count() or 1
            ceiling = cores * 1000 / (s["cpu_ms_per_journey"] + s["client_cpu_ms_per_journey"])
            print(f"{'':18} CPU-bound ceiling if the {cores} cores were all ours ~{ceiling:.0f} journeys/s")
        base = next(m for m in JOURNEY_MODES if m in r)
        ratios = ", ".join(
            f"{m}/{base} {r[m]['journeys_per_s'] / max(r[base]['journeys_per_s'], 1e-9):.1f}"
            for m in JOURNEY_MODES
            if m in r and m != base
        )
        print(f"{'':9} journeys/s ratios: {ratios or '-'}; load average {os.getloadavg()[0]:.1f}")
        best = list(m for m in JOURNEY_MODES if m in r)[-1]
        if kind == "postgres":
            ok = r[best]["journeys_per_s"] >= 500 and r[best]["next_p99_ms"] <= 20
            print(
                f"{'':9} goal >= 500 journeys/s and next p99 <= 20 ms ({best}): {'met' if ok else 'NOT met'}"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


# ---------------------------------------------------------------- moderation queue: first load, restarted


def moderation_bench(kind: str, n_statements: int) -> dict:
    """Seconds to the first moderation page of ``n_statements`` pending statements (near-duplicate hints
    on, the bundled MiniLM): with no stored vectors (what every restart cost before: every worker embedded
    every statement), then in a fresh app (a restart) that reads the vectors kept in the database."""
    import re

    from fastapi.testclient import TestClient

    from ccai.consultation.limits import Limits
    from ccai.consultation.web.app import WebSettings, create_app

    folder = Path(tempfile.mkdtemp(prefix=f"ccai-moderation-{kind}-"))
    url, drop = fresh_database(kind, folder)
    try:
        engine = store.make_engine(url)
        store.migrate(engine)
        with Session(engine) as db:
            owner = accounts.create_user(db, "mod-bench@example.org", "benchmark-pass", "owner")
            cid = service.create_conversation(db, owner, {"topic": "moderation bench"}).id
            topics = ["privacy", "safety", "honesty", "fairness", "autonomy", "law", "children", "jobs"]
            db.execute(
                sa.insert(store.Statement),
                [
                    {
                        "conversation_id": cid,
                        "number": i,
                        "text": f"Statement {i}: the AI should weigh {topics[i % 8]} in case {i // 8}",
                        "original_text": "",
                        "text_key": f"{i:064d}",
                        "moderation": 0,
                        "mod_reason": "",
                        "extra": "",
                        "created_ms": store.now_ms(),
                    }
                    for i in range(n_statements)
                ],
            )
            db.commit()
        engine.dispose()
        timings = {}
        for name in ("no stored vectors", "after restart", "second load"):
            if name != "second load":
                app = create_app(
                    WebSettings(
                        database_url=url, secret_key="k" * 40, near_duplicates=True, limits=Limits.off()
                    )
                )
                client = TestClient(app)
                token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
                client.post(
                    "/login",
                    data={
                        "email": "mod-bench@example.org",
                        "password": "benchmark-pass",
                        "csrf_token": token,
                    },
                )
                app.state.finder.embed(["load the model first"])  # model loading is not the queue's cost
            started = time.perf_counter()
            response = client.get(f"/admin/c/{cid}/moderate")
            timings[name] = time.perf_counter() - started
            assert response.status_code == 200, response.text[:300]
        app.state.engine.dispose()
        return {"db": kind, "statements": n_statements, **timings}
    finally:
        drop()


def moderation_main(args) -> None:
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for kind in kinds:
        r = moderation_bench(kind, args.statements)
        print(
            f"{kind:9} moderation queue, {r['statements']} pending statements, first page of 50 with hints: "
            f"no stored vectors {r['no stored vectors']:.2f} s (every restart before), "
            f"after a restart {r['after restart']:.2f} s, again {r['second load']:.2f} s "
            f"(goal <= 1 s after a restart: {'met' if r['after restart'] <= 1 else 'NOT met'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for PostgreSQL")
    parser.add_argument(
        "--kill-after", type=float, default=2.0, help="SIGKILL the server this long into load"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--redis-limits",
        default="",
        help="vote limits on, counted in this Redis (e.g. redis://127.0.0.1:6379/0)",
    )
    parser.add_argument("--journey", action="store_true", help="next statement then vote, old vs new routing")
    parser.add_argument("--statements", type=int, default=1418, help="journey mode: statements (CCAI: 1,418)")
    parser.add_argument(
        "--votes", type=int, default=38_000, help="journey mode: votes already cast (CCAI: ~38k)"
    )
    parser.add_argument(
        "--modes", default="recount,cache,fast", help="journey mode: how /next is served, comma-separated"
    )
    parser.add_argument(
        "--moderation", action="store_true", help="moderation queue first load (MiniLM hints)"
    )
    args = parser.parse_args()
    if args.moderation:
        return moderation_main(args)
    if args.journey:
        return journey_main(args)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = []
    print(f"{'db':9} {'path':9} {'votes/s':>9} {'p50 ms':>8} {'p99 ms':>8}   notes")
    for kind in kinds:
        r = bench(kind, args)
        results.append(r)
        s, b = r["server"], r["baseline"]
        print(
            f"{kind:9} {'server':9} {s['votes_per_s']:9.0f} {s['p50_ms']:8.1f} {s['p99_ms']:8.1f}   "
            f"{r['clients']} clients, {r['workers']} worker(s), errors {r['server_errors'] or 'none'}"
        )
        who = "server + PostgreSQL" if kind == "postgres" else "server"
        cores = os.cpu_count() or 1
        ceiling = cores * 1e6 / (s["cpu_us_per_vote"] + s["client_cpu_us_per_vote"])
        print(
            f"{'':9} {'':9} {s['cpu_us_per_vote']:9.0f} µs CPU per vote ({who}) + "
            f"{s['client_cpu_us_per_vote']:.0f} µs load generator; load average {os.getloadavg()[0]:.1f} on "
            f"{cores} cores; CPU-bound ceiling if they were all ours ~{ceiling:.0f} votes/s (estimate)"
        )
        print(
            f"{kind:9} {'baseline':9} {b['votes_per_s']:9.0f} {b['p50_ms']:8.1f} {b['p99_ms']:8.1f}   "
            f"SQLAlchemy inserts, no HTTP; server/baseline = {r['ratio']:.2f}"
        )
        print(f"{'':9} {'':9} {b['cpu_us_per_vote']:9.0f} µs CPU per vote (inserting threads + database)")
        print(
            f"{kind:9} {'SIGKILL':9} {r['kill_acked']:9d} votes acknowledged before the kill, "
            f"{r['kill_lost']} lost"
        )
        if kind == "postgres":
            ok = s["votes_per_s"] >= 1500 and s["p99_ms"] <= 50
            print(f"{'':9} goal >= 1500 votes/s and p99 <= 50 ms: {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if any(r["kill_lost"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
