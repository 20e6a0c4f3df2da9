"""Preparing the bundled model from an empty cache, by several processes at once (the side-by-side case)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.model

_PREPARE = (
    "import sys; from pathlib import Path; from ccai.models.prepare import prepare_smollm2; "
    "print(prepare_smollm2(Path(sys.argv[1])))"
)


def test_several_processes_prepare_the_bundled_model_at_once_into_an_empty_cache(tmp_path):
    """Before the lock, two side-by-side runs deleted each other's half-converted folder."""
    from ccai.models.prepare import SMOLLM2_DIRNAME, is_model_dir

    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen([sys.executable, "-c", _PREPARE, str(cache)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outcomes = [(proc.wait(timeout=900), *proc.communicate()) for proc in procs]
    assert [rc for rc, _, _ in outcomes] == [0, 0, 0], [err[-2000:] for _, _, err in outcomes]
    target = cache / "models" / SMOLLM2_DIRNAME
    assert {out.strip() for _, out, _ in outcomes} == {str(target)}
    assert is_model_dir(target)
    assert sorted(p.name for p in target.parent.iterdir()) == [SMOLLM2_DIRNAME, SMOLLM2_DIRNAME + ".lock"]
    config = json.loads((target / "config.json").read_text())
    assert config["num_hidden_layers"] == 30 and "quantization_config" not in config
