"""The schema comes only from the Alembic migrations, and matches the models; SQLite runs in WAL mode, and its
writers take the write lock up front (a write after a stale read would fail)."""

from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session
from starlette.requests import Request

from ccai.consultation import jobs, live_report, store
from ccai.consultation.web.deps import get_db


def test_migrations_match_the_models(app):
    with app.state.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), store.Base.metadata)
    assert diff == []


def test_no_ip_address_columns(app):
    inspector = sa.inspect(app.state.engine)
    columns = {c["name"] for table in inspector.get_table_names() for c in inspector.get_columns(table)}
    assert not {name for name in columns if "ip" in name.split("_")}


def test_sqlite_upgrade_downgrade_and_wal(tmp_path):
    engine = store.make_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    store.migrate(engine)
    assert {"votes", "statements", "participants", "answers", "users", "sessions"} <= set(
        sa.inspect(engine).get_table_names()
    )
    with engine.connect() as conn:
        assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("pragma foreign_keys").scalar() == 1
    store.downgrade(engine)
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    store.migrate(engine)  # and back up again
    engine.dispose()


def test_a_sqlite_writer_waits_its_turn_instead_of_failing_on_a_stale_read(tmp_path):
    """WAL mode: a transaction that read before another connection committed cannot write any more
    ("database is locked" at once, no busy wait). With the write intent a writer takes the lock at BEGIN,
    so the other writer waits and both commit."""
    engine = store.make_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE probe (n INTEGER)")
    count, insert = sa.text("SELECT count(*) FROM probe"), sa.text("INSERT INTO probe VALUES (1)")
    intent = {store.WRITE_INTENT: True}

    def other_writer() -> None:
        with Session(engine, execution_options=intent) as other:
            other.execute(insert)
            other.commit()

    with Session(engine) as stale:  # deferred: what reads do
        stale.execute(count)
        other_writer()
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            stale.execute(insert)
    with Session(engine, execution_options=intent) as writer:
        assert writer.execute(count).scalar() == 1
        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join(0.5)  # it cannot commit while the writer holds the lock
        writer.execute(insert)
        writer.commit()
    thread.join(15)
    with engine.connect() as conn:
        assert conn.execute(count).scalar() == 3
    engine.dispose()


@pytest.mark.parametrize("method, intent", [("POST", True), ("DELETE", True), ("GET", False)])
def test_requests_that_may_write_say_so(app, method, intent):
    request = Request({"type": "http", "method": method, "app": app, "headers": []})
    sessions = get_db(request)
    db = asyncio.run(sessions.__anext__())
    try:
        assert bool(db.connection().get_execution_options().get(store.WRITE_INTENT)) is intent
    finally:
        db.close()


def test_the_report_job_stores_its_report_when_votes_arrive_while_it_computes(app, owner, monkeypatch):
    """The job reads, computes for a while, then writes: votes committed in the meantime must not make its
    write fail (on SQLite a write after a stale read would)."""
    cid = owner.new_conversation()
    owner.seed(cid, "The AI should be honest.", "The AI should be kind.")
    build = live_report.build

    def build_while_others_commit(*args, **kwargs):
        report = build(*args, **kwargs)
        with app.state.engine.begin() as conn:  # another request commits meanwhile
            conn.execute(
                sa.text("UPDATE conversations SET description = 'changed' WHERE id = :c"), {"c": cid}
            )
        return report

    monkeypatch.setattr(jobs.live_report, "build", build_while_others_commit)
    jobs.compute_report(cid, database_url=app.state.engine.url.render_as_string(hide_password=False))
    with app.state.engine.connect() as conn:
        assert conn.execute(
            sa.select(store.StoredReport.version).where(store.StoredReport.conversation_id == cid)
        ).scalar()
