"""Writing files and cached folders so that readers never see half of one, whoever else writes at once.

Why one module: every stage writes results that another process may read while they are written (the
progress view reads ``state.json``, side-by-side runs share the model cache), and a crash must never leave a
file that looks complete. Two rules cover it:

* a file is written to a unique temporary sibling and moved over the target with ``os.replace`` (atomic on
  POSIX and Windows within one file system): :func:`atomic_write_text`, :func:`atomic_write_bytes`;
* a cached folder is built under a file lock into a unique temporary sibling, checked, then renamed into
  place; every other process waits on the lock and then finds the finished folder: :func:`cached_dir`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

LOCK_TIMEOUT_S = 30 * 60


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a unique temporary sibling of ``path`` for writing; on a clean exit it replaces ``path``.

    For writers that stream (JSON Lines, CSV): an error inside the block leaves ``path`` as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a unique temporary sibling and one atomic rename."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode(encoding))


def cached_dir(
    target: str | Path,
    build: Callable[[Path], None],
    is_complete: Callable[[Path], bool],
    *,
    force: bool = False,
    timeout_s: float = LOCK_TIMEOUT_S,
) -> Path:
    """Return ``target``, building it with ``build(tmp_dir)`` when it is missing or incomplete.

    Safe for any number of processes at once: the first takes ``<target>.lock`` (``filelock``) and builds into
    a fresh ``tempfile.mkdtemp`` sibling; the others wait on the lock and then see the finished folder. The
    new folder replaces the old one by rename, so readers see either the old folder or the new one, never a
    mixture; a failed build removes its temporary folder and leaves ``target`` as it was.
    """
    from filelock import FileLock

    target = Path(target)
    if is_complete(target) and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=timeout_s):
        if is_complete(target) and not force:
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            build(tmp)
            if not is_complete(tmp):
                raise RuntimeError(f"{target}: the build finished but the folder is incomplete")
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
                os.replace(target, old / target.name)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target
