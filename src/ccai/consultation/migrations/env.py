"""Alembic environment: runs the migrations on the engine ccai hands over (``config.attributes``)."""

from __future__ import annotations

from alembic import context

from ccai.consultation.store import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = context.config.attributes.get("engine")
    if engine is None:  # called from the alembic CLI: take the URL from alembic.ini / -x url=...
        import sqlalchemy as sa

        url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
            "sqlalchemy.url"
        )
        engine = sa.create_engine(url)
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
