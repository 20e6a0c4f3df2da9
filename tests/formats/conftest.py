"""Fixtures for the Polis format tests: the shared data folders and a writer of small hand-made exports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def opendata(shared_data: Path) -> Path:
    folder = shared_data / "polis-opendata"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


@pytest.fixture(scope="session")
def ccai_polis(shared_data: Path) -> Path:
    folder = shared_data / "ccai_polis"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


@pytest.fixture
def make_export(tmp_path: Path) -> Callable[..., Path]:
    """``make_export({"votes.csv": "text..."})`` writes the given files into a fresh folder."""
    counter = iter(range(1000))

    def make(files: dict[str, str]) -> Path:
        folder = tmp_path / f"export{next(counter)}"
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        return folder

    return make
