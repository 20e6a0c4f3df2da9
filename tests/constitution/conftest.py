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


def with_review_merges(data: dict) -> dict:
    """A review file's data with merges in it: the strict merge rule proposes none among the 116 CCAI
    statements, so tests of the review step add the merges of the project's own review (as a person would)."""
    import yaml

    from ccai.constitution.study import CCAI_REVIEW

    if not data.get("merges"):
        data["merges"] = yaml.safe_load(CCAI_REVIEW.read_text())["merges"]
    return data
