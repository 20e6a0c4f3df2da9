"""ccai.files: atomic writes and cached folders that never show half of themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccai.files import atomic_write_text, cached_dir


def _complete(folder: Path) -> bool:
    return (folder / "done").is_file()


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    target = atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    assert target.read_text() == "hello" and sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_cached_dir_builds_once_and_a_failed_build_changes_nothing(tmp_path):
    calls = []

    def build(out: Path) -> None:
        calls.append(out)
        (out / "payload").write_text("v1")
        (out / "done").write_text("")

    target = tmp_path / "thing"
    assert cached_dir(target, build, _complete) == target
    assert cached_dir(target, build, _complete) == target and len(calls) == 1  # second call: cached

    def broken(out: Path) -> None:
        (out / "payload").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        cached_dir(target, broken, _complete, force=True)
    assert (target / "payload").read_text() == "v1"  # the old folder is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thing", "thing.lock"]  # no temporary leftovers

    def incomplete(out: Path) -> None:
        (out / "payload").write_text("v2")

    with pytest.raises(RuntimeError, match="incomplete"):
        cached_dir(target, incomplete, _complete, force=True)
    assert (target / "payload").read_text() == "v1"
