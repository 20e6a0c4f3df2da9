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


def start_server(url: str, port: int, workers: int) -> subprocess.Popen:
    env = os.environ | {
        "DATABASE_URL": url,
        "CCAI_SECRET_KEY": "bench-" + "k" * 40,
        "CCAI_NEAR_DUPLICATES": "0",
    }
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
        server = start_server(url, port, workers)
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
    args = parser.parse_args()
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
