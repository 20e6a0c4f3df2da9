"""Shared test fixtures: the data folder, and skipping tests whose service or browser is absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ccai.datasets import data_dir

CHROMIUM = os.environ.get("CCAI_CHROMIUM", "/usr/bin/chromium")
POSTGRES_URL = os.environ.get("CCAI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need it skip with a clear reason when it is absent."""
    path = data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set CCAI_DATA_DIR)")
    return path


def _postgres_up() -> bool:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `postgres` / `browser` tests when the service is missing; under CI=true they must run."""
    in_ci = os.environ.get("CI") == "true"
    needs_pg = any(item.get_closest_marker("postgres") for item in items)
    pg_ok = _postgres_up() if needs_pg else True
    browser_ok = shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists()
    for item in items:
        if item.get_closest_marker("postgres") and not pg_ok and not in_ci:
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL not reachable at {POSTGRES_URL}"))
        if item.get_closest_marker("browser") and not browser_ok and not in_ci:
            item.add_marker(pytest.mark.skip(reason=f"chromium not found at {CHROMIUM}"))
