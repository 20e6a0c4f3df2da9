"""The self-describing run directory every stage writes.

A run directory holds ``config.yaml`` (the resolved configuration), ``manifest.json`` (input hashes,
package versions, seed, timings) and ``log.jsonl`` (one JSON object per event), next to the outputs.
Two runs with the same config, inputs and seed produce the same outputs; the manifest lets anyone check.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

TRACKED_PACKAGES = (
    "ccai",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "torch",
    "transformers",
    "trl",
    "peft",
    "datasets",
    "accelerate",
    "sqlalchemy",
    "fastapi",
    "sentence-transformers",
)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_inputs(paths: Iterable[Path]) -> dict[str, str]:
    """sha256 of each input file; a folder is expanded to the files inside it (sorted)."""
    hashes: dict[str, str] = {}
    for path in paths:
        path = Path(path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            hashes[str(file)] = file_sha256(file)
    return hashes


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (absent packages left out), with Python's and the platform's.

    The Version line is read from each METADATA file directly: ``metadata.version`` parses the whole file
    with the email parser, ~30 ms for these 14 packages, a few percent of a whole ``ccai analyze``."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found = re.search(r"^Version:[ \t]*(\S+)", dist.read_text("METADATA") or "", re.MULTILINE)
        versions[name] = found.group(1) if found else dist.version
    return versions


@dataclass
class RunDir:
    """One run's output folder. Create it with :meth:`create`; call :meth:`finish` at the end."""

    path: Path
    started: float = field(default_factory=time.time)

    @classmethod
    def create(
        cls,
        path: Path | str,
        config: Mapping[str, Any],
        *,
        seed: int | None,
        inputs: Iterable[Path] = (),
        stage: str,
    ) -> RunDir:
        run = cls(Path(path))
        run.path.mkdir(parents=True, exist_ok=True)
        (run.path / "config.yaml").write_text(yaml.safe_dump(_plain(config), sort_keys=False))
        manifest = {
            "stage": stage,
            "seed": seed,
            "inputs": hash_inputs(inputs),
            "versions": package_versions(),
            "command": sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(run.started)),
        }
        run.write_json("manifest.json", manifest)
        (run.path / "log.jsonl").write_text("")
        return run

    def log(self, event: str, **fields: Any) -> None:
        record = {"t": round(time.time() - self.started, 3), "event": event, **_plain(fields)}
        with open(self.path / "log.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def write_json(self, name: str, payload: Any) -> Path:
        """Write atomically: a reader never sees a half-written file."""
        from ccai.files import atomic_write_text

        text = json.dumps(_plain(payload), indent=2, sort_keys=False) + "\n"
        return atomic_write_text(self.path / name, text)

    def finish(self, **summary: Any) -> None:
        manifest = json.loads((self.path / "manifest.json").read_text())
        manifest["seconds"] = round(time.time() - self.started, 3)
        manifest["outputs"] = sorted(
            str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file()
        )
        manifest.update(_plain(summary))
        self.write_json("manifest.json", manifest)


def _plain(value: Any) -> Any:
    """Make numpy scalars, paths and tuples JSON/YAML friendly."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
