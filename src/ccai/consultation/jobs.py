"""The live analysis as a background job: requests ask for a report, a worker computes it, pages read it.

The analysis of a conversation (PCA, clustering, consensus; ``live_report.build``) takes from a fraction
of a second to many seconds; run inside a request it holds a worker and, with several server processes,
each would compute the same report. Here a page reads the report kept in ``live_reports``
(``store.StoredReport``); when the votes or the moderation have moved on since (``live_report.version``),
it asks for one computation of the new state and shows the kept one meanwhile ("updating"), or a page
that reloads itself when there is none yet.

Two queues behind one :meth:`submit`:

- :class:`RedisQueue` (``CCAI_REDIS_URL`` set): RQ, a kept job library on Redis. Jobs carry a stable id
  per (conversation, state), so the servers asking for the same report at once make one job. Workers run
  ``ccai consultation-worker`` (one or more, on any machine that reaches Redis and the database).
- :class:`LocalQueue` (no Redis: SQLite or one process): a thread of this process does the same jobs,
  one at a time, still outside every request.

Either way the job is :func:`compute_report`: it opens the database (the worker's ``DATABASE_URL``: no
credentials travel through Redis), builds the report and stores it with the state it was computed from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ccai.consultation import live_report, store
from ccai.consultation.preview import constitution_preview
from ccai.consultation.store import Conversation, StoredReport

QUEUE_NAME = "ccai-reports"
log = logging.getLogger(__name__)
_engines: dict[str, sa.Engine] = {}


def _engine(url: str) -> sa.Engine:
    """One engine per database per worker process (a connection pool, not a connection per job)."""
    if url not in _engines:
        _engines[url] = store.make_engine(url)
    return _engines[url]


def compute_report(conversation_id: int, seed: int = 0, database_url: str = "", merge: bool = False) -> str:
    """The job: build the live report of one conversation and keep it; returns the state it names.

    The database is ``database_url`` or the worker's ``DATABASE_URL`` (queued jobs carry no credentials)."""
    url = database_url or os.environ.get("DATABASE_URL", "")
    if not url:
        raise ValueError("the report worker needs DATABASE_URL (the servers' database)")
    with Session(_engine(url)) as db:
        conversation = db.get(Conversation, conversation_id)
        if conversation is None:
            return "gone"
        state = live_report.version(db, conversation)  # read first: votes arriving meanwhile make it stale
        report = live_report.build(db, conversation, None, seed)
        report.computed_ms = store.now_ms()
        row = db.get(StoredReport, conversation_id) or StoredReport(conversation_id=conversation_id)
        if report.result is not None:  # the constitution the votes so far would give (merge: MiniLM)
            previous = json.loads(row.body).get("preview") if row.body else None
            try:
                report.preview = constitution_preview(report.result, merge, previous)
            except Exception:  # the report still goes out; the page leaves the preview out
                log.exception("constitution preview of conversation %s failed", conversation_id)
        body = live_report.to_json(report)
        # End the read (its snapshot is as old as the computation) and write in a transaction of its own
        # that takes the write lock first: on SQLite a write after a stale read fails at once when votes
        # were committed meanwhile (store._sqlite_begin).
        db.rollback()
        db.connection(execution_options={store.WRITE_INTENT: True})
        row = db.get(StoredReport, conversation_id) or StoredReport(conversation_id=conversation_id)
        row.version, row.computed_ms, row.body = state, report.computed_ms, body
        db.merge(row)
        db.commit()
    return state


def queue_name(prefix: str = "ccai") -> str:
    """The report queue of the app using Redis key ``prefix`` (several apps may share one Redis)."""
    return QUEUE_NAME if prefix == "ccai" else f"{QUEUE_NAME}-{prefix}"


def job_id(conversation_id: int, state: str) -> str:
    return f"report-{conversation_id}-{hashlib.sha256(state.encode()).hexdigest()[:16]}"


class LocalQueue:
    """Jobs on one thread of this process (no extra service); a job already waiting is not added twice."""

    def __init__(self, database_url: str, seed: int = 0, merge: bool = False):
        self.database_url, self.seed, self.merge = database_url, seed, merge
        self.jobs: queue.Queue = queue.Queue()
        self.waiting: set[str] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def submit(self, conversation_id: int, state: str) -> bool:
        """Ask for the report of ``conversation_id`` in ``state``; False when already asked for."""
        name = job_id(conversation_id, state)
        with self.lock:
            if name in self.waiting:
                return False
            self.waiting.add(name)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="ccai-reports", daemon=True)
                self.thread.start()
        self.jobs.put((name, conversation_id))
        return True

    def _run(self) -> None:
        while True:
            name, conversation_id = self.jobs.get()
            try:
                compute_report(conversation_id, self.seed, self.database_url, self.merge)
            except Exception:  # a failed report must not stop the next one; the page keeps the old one
                log.exception("live report of conversation %s failed", conversation_id)
            finally:
                with self.lock:
                    self.waiting.discard(name)
                self.jobs.task_done()

    def join(self) -> None:
        """Wait until every job asked for so far is done (tests, shutdown)."""
        self.jobs.join()


class RedisQueue:
    """Jobs in an RQ queue on Redis, done by ``ccai worker`` processes."""

    def __init__(
        self, database_url: str, redis_url: str, seed: int = 0, name: str = QUEUE_NAME, merge: bool = False
    ):
        import redis
        from rq import Queue

        self.database_url, self.seed, self.merge = database_url, seed, merge
        self.connection = redis.Redis.from_url(redis_url)
        self.queue = Queue(name, connection=self.connection)

    def submit(self, conversation_id: int, state: str) -> bool:
        from rq.job import Job

        name = f"{self.queue.name}-{job_id(conversation_id, state)}"  # job ids are global in Redis
        # one job per state, whichever server asks first: SET NX is the claim, the job id the name
        if not self.connection.set(f"{self.queue.name}:claim:{name}", 1, nx=True, ex=3600):
            return False
        if Job.exists(name, connection=self.connection):
            return False
        self.queue.enqueue(
            compute_report,
            conversation_id,
            self.seed,
            "",  # the worker's DATABASE_URL
            self.merge,
            job_id=name,
            job_timeout=900,
            result_ttl=3600,
            failure_ttl=86_400,
        )
        return True


def make_queue(
    database_url: str, redis_url: str = "", seed: int = 0, name: str = QUEUE_NAME, merge: bool = False
):
    """RQ on Redis when ``redis_url`` is given, else a thread; ``merge``: the constitution preview merges
    near-duplicates with MiniLM (the app loads it anyway when near-duplicate hints are on)."""
    if redis_url:
        return RedisQueue(database_url, redis_url, seed, name, merge)
    return LocalQueue(database_url, seed, merge)


def current_report(db: Session, conversation: Conversation, jobs) -> live_report.LiveReport:
    """The kept report for the page, asking ``jobs`` for a fresh one when the conversation moved on."""
    state = live_report.version(db, conversation)
    row = db.get(StoredReport, conversation.id)
    if row is None or row.version != state:
        jobs.submit(conversation.id, state)
    if row is None:
        return live_report.LiveReport(conversation.id, 0, 0, 0, status="computing")
    if row.version == state:
        return live_report.from_json(row.body)
    kept = live_report.from_json(row.body, status="updating")
    return live_report.restrict(kept, live_report.shown_statements(db, conversation))


def work(redis_url: str, name: str = QUEUE_NAME, burst: bool = False) -> None:
    """Run an RQ worker on the report queue in this process (no fork per job: the analysis's imports stay
    loaded). ``burst``: stop when the queue is empty."""
    import redis
    from rq import Queue, SimpleWorker

    connection = redis.Redis.from_url(redis_url)
    worker = SimpleWorker([Queue(name, connection=connection)], connection=connection)
    worker.work(burst=burst, with_scheduler=False)
