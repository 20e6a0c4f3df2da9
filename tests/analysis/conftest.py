"""Fixtures for the analysis tests: real Polis exports (openData, the CCAI consultation) and the CCAI
reference tables, read once per session."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest

from ccai.formats.polis import PolisExport, read_id_list, read_polis_export


@lru_cache(maxsize=32)
def _read(folder: Path, participants_votes: str | None = None) -> PolisExport:
    return read_polis_export(folder, participants_votes=participants_votes)


@pytest.fixture(scope="session")
def load_opendata(shared_data: Path):
    """``load_opendata(name)`` -> PolisExport of one openData conversation."""

    def load(name: str) -> PolisExport:
        folder = shared_data / "polis-opendata" / name
        if not folder.is_dir():
            pytest.skip(f"{folder} not found")
        return _read(folder)

    return load


@pytest.fixture(scope="session")
def opendata_names(shared_data: Path) -> list[str]:
    """Every conversation folder in polis-opendata."""
    folder = shared_data / "polis-opendata"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


@pytest.fixture(scope="session")
def ccai_dir(shared_data: Path) -> Path:
    folder = shared_data / "ccai_polis"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


@pytest.fixture(scope="session")
def ccai_raw(ccai_dir: Path) -> PolisExport:
    """The raw Pol.is export of the CCAI consultation (1,126 voters, 1,418 comments)."""
    return _read(ccai_dir)


@pytest.fixture(scope="session")
def ccai_clean(ccai_dir: Path) -> PolisExport:
    """The organisers' cleaned matrix (clean_votes.csv: 1,002 participants, 275 statements, their labels)."""
    return _read(ccai_dir, "clean_votes.csv")


@pytest.fixture(scope="session")
def ccai_toss(ccai_dir: Path) -> list[int]:
    return read_id_list(ccai_dir / "ids-to-toss.csv")


@pytest.fixture(scope="session")
def ccai_reference(shared_data: Path) -> pd.DataFrame:
    return pd.read_csv(shared_data / "ccai" / "ccai_statement_reference.csv").set_index("statement_id")


@pytest.fixture(scope="session")
def ccai_groups(shared_data: Path) -> pd.DataFrame:
    return pd.read_csv(shared_data / "ccai" / "ccai_participant_groups.csv").set_index("participant")
