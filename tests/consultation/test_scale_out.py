"""Two server processes on two ports, one PostgreSQL database, one Redis: they behave as one app.

Login failures and participation limits are counted across both (``counters.py``), a session made on one
is signed in on the other (``sessions`` table), and the live report is computed once, by the background
worker (RQ, ``jobs.py``), never inside a request, and the same report is seen through both.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ccai.consultation import accounts, jobs, service, store
from ccai.consultation.counters import RedisLog
from tests.consultation.live_server import free_port

REDIS_URL = os.environ.get("CCAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "correct horse battery"


def _redis_or_skip():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Redis not reachable at {REDIS_URL}")


def _start(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "ccai.consultation.web.server:app_from_env", "--factory"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, env=os.environ | env, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return process, f"http://127.0.0.1:{port}"
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError("a server exited during start-up")
        time.sleep(0.2)
    raise RuntimeError("a server did not start within 60 s")


def _login(base: str, email: str, password: str) -> httpx.Response:
    client = httpx.Client(base_url=base)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    response.client = client  # the caller may go on with this client's cookies
    return response


@pytest.fixture
def two_servers(postgres_url):
    _redis_or_skip()
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    engine = store.make_engine(postgres_url)
    store.migrate(engine)
    with Session(engine) as db:
        owner = accounts.create_user(db, f"scale-{prefix}@example.org", PASSWORD, "owner")
        guarded = accounts.create_user(db, f"guarded-{prefix}@example.org", PASSWORD, "moderator")
        conversation = service.create_conversation(db, owner, {"topic": "Two servers", "unlock_threshold": 0})
        for i in range(8):
            service.add_seed(db, conversation, f"Scale-out statement {i}")
        db.commit()
        emails, cid = (owner.email, guarded.email), conversation.id
    env = {
        "DATABASE_URL": postgres_url,
        "CCAI_SECRET_KEY": "scale-out-" + "s" * 40,
        "CCAI_NEAR_DUPLICATES": "0",
        "CCAI_REDIS_URL": REDIS_URL,
        "CCAI_REDIS_PREFIX": prefix,
        "CCAI_LIMITS": "votes_per_participant=4/60",
    }
    servers = [_start(env) for _ in range(2)]
    try:
        yield [base for _, base in servers], emails, cid, prefix
    finally:
        for process, _ in servers:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        RedisLog(REDIS_URL, prefix).reset()
        from rq import Queue

        Queue(jobs.queue_name(prefix), connection=RedisLog(REDIS_URL).client).delete(delete_jobs=True)
        engine.dispose()


@pytest.mark.postgres
def test_two_servers_share_limits_sessions_and_one_report(two_servers, postgres_url, monkeypatch):
    (a, b), (owner, guarded), cid, prefix = two_servers

    # signed-in state: a session made through A is valid on B
    signed_in = _login(a, owner, PASSWORD)
    assert signed_in.status_code == 303
    cookie = {"ccai_session": signed_in.client.cookies["ccai_session"]}
    assert httpx.get(f"{b}/admin", cookies=cookie).status_code == 200

    # login failures counted across both: 5 free (3 on A, 2 on B), the 6th waits, on either server
    wrong = [_login(server, guarded, "wrong password").status_code for server in (a, a, a, b, b)]
    assert wrong == [401] * 5
    assert _login(b, guarded, "wrong password").status_code == 429
    assert _login(a, guarded, PASSWORD).status_code == 429  # even the right password waits its turn

    # participation limits counted across both: 4 votes a minute per participant, wherever they land
    joined = httpx.post(f"{a}/api/v1/conversations/{cid}/participants").json()
    headers = {"Authorization": f"Bearer {joined['token']}"}
    statuses = [
        httpx.post(
            f"{server}/api/v1/conversations/{cid}/votes", headers=headers, json={"statement": n, "vote": 1}
        ).status_code
        for n, server in enumerate((a, b, a, b, b))
    ]
    assert statuses == [201, 201, 201, 201, 429]

    # the report: asked for through both, queued once, computed by the worker, the same through both
    first = [httpx.get(f"{server}/c/{cid}/report").text for server in (a, b)]
    assert all("The report is being computed" in page for page in first)
    from rq import Queue

    queue = Queue(jobs.queue_name(prefix), connection=RedisLog(REDIS_URL).client)
    claims = sorted(k.decode() for k in queue.connection.scan_iter(f"{queue.name}:claim:*"))
    assert queue.count == 1, (queue.job_ids, claims)  # one job for one state, though two servers asked
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    jobs.work(REDIS_URL, jobs.queue_name(prefix), burst=True)
    assert queue.finished_job_registry.count == 1 and queue.failed_job_registry.count == 0
    pages = [httpx.get(f"{server}/c/{cid}/report").text for server in (a, b)]
    assert all("1 participants · 4 votes" in page and "being computed" not in page for page in pages)
    assert _main(pages[0]) == _main(pages[1])
    assert queue.count == 0  # nothing changed since: no new job
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        kept = conn.execute(
            sa.text("select count(*) from live_reports where conversation_id = :c"), {"c": cid}
        )
        assert kept.scalar_one() == 1
    engine.dispose()


def _main(page: str) -> str:
    return page.split("<main>", 1)[1].split("</main>", 1)[0]


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_windows_in_memory_and_in_redis_count_alike(kind):
    """counters.py: both logs refuse past a limit, say how long to wait, and record nothing when refused."""
    from ccai.consultation.counters import MemoryLog

    if kind == "redis":
        _redis_or_skip()
    log = MemoryLog() if kind == "memory" else RedisLog(REDIS_URL, f"test-{uuid.uuid4().hex[:8]}")
    try:
        windows = [("a", 2, 60.0), ("b", 3, 60.0)]
        assert [log.hit_many(windows, 1000.0 + i) for i in range(2)] == [0.0, 0.0]
        assert log.hit_many(windows, 1002.0) == pytest.approx(58.0)  # a is full until 1060
        assert len(log.recent("b", 60.0, 1002.0)) == 2  # the refused event was not counted in b either
        assert log.hit_many(windows, 1061.0) == 0.0  # the window moved on
        assert log.hit("c", 1, 10.0, 5.0) == 0.0 and log.hit("c", 1, 10.0, 6.0) == pytest.approx(9.0)
    finally:
        log.reset()
