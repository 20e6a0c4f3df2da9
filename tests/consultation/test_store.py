"""The schema comes only from the Alembic migrations, and matches the models; SQLite runs in WAL mode."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ccai.consultation import store


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
