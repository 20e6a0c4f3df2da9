"""Fixtures for the constitution stage: the CAI paper files, one embedder per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccai.constitution import Constitution, from_cai_paper


@pytest.fixture(scope="session")
def cai_paper(shared_data: Path) -> Constitution:
    return from_cai_paper(shared_data / "ccai" / "cai_paper_prompts")


@pytest.fixture(scope="session")
def embedder():
    """The bundled MiniLM, loaded once for the whole session (loading is the slow part)."""
    from ccai.constitution.dedup import default_embedder

    return default_embedder()
