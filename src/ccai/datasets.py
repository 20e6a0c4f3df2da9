"""Where the shared data lives, and small typed helpers to reach it.

Every loader in the project resolves paths through :func:`data_dir`, so one setting (``CCAI_DATA_DIR``)
points the whole tool at another copy of the data. Nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "CCAI_DATA_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class DataNotFoundError(FileNotFoundError):
    """A shared data set is missing; the message says which and how to point ccai at it."""


def data_dir() -> Path:
    """The shared data folder: ``$CCAI_DATA_DIR`` or ``../shared/data`` next to the project root."""
    value = os.environ.get(ENV_VAR)
    if value:
        return Path(value).expanduser().resolve()
    candidates = [PROJECT_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return candidates[0]


def dataset_path(name: str, *parts: str) -> Path:
    """Path of ``name`` (a folder under the data dir, optionally a file inside it); it must exist."""
    path = data_dir().joinpath(name, *parts)
    if not path.exists():
        raise DataNotFoundError(
            f"shared data set not found: {path}. Set {ENV_VAR} to the folder that holds "
            f"'{name}/' (currently {data_dir()})."
        )
    return path
