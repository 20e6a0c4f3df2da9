"""Shared test fixtures: the data folder, and skipping tests whose service or browser is absent.

Every test session starts from empty caches, as a newcomer's first run does: the bundled model is converted
afresh (concurrently, where runs go side by side), and nothing may lean on a Hugging Face or other library
cache that an earlier run happened to fill. Set ``CCAI_TEST_WARM_CACHE=1`` to reuse your own caches while
iterating locally; CI never sets it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

if os.environ.get("CCAI_TEST_WARM_CACHE") != "1":
    _COLD = Path(tempfile.mkdtemp(prefix="ccai-test-caches-"))
    for _var in ("CCAI_CACHE_DIR", "HF_HOME", "XDG_CACHE_HOME", "MPLCONFIGDIR"):
        os.environ[_var] = str(_COLD / _var.lower())
    atexit.register(shutil.rmtree, _COLD, ignore_errors=True)

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
