"""The run directory describes itself; the data folder follows CCAI_DATA_DIR."""

from __future__ import annotations

import json

import pytest
import yaml

from ccai.datasets import DataNotFoundError, data_dir, dataset_path
from ccai.manifest import RunDir


def test_run_dir_records_config_inputs_versions_and_outputs(tmp_path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("a,b\n1,2\n")
    run = RunDir.create(tmp_path / "run", {"seed": 3, "x": (1, 2)}, seed=3, inputs=[data], stage="test")
    run.log("step", loss=0.5)
    (run.path / "out.txt").write_text("result")
    run.finish(n=1)
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["stage"] == "test"
    assert len(manifest["inputs"][str(data)]) == 64
    assert "numpy" in manifest["versions"] and manifest["n"] == 1
    assert "out.txt" in manifest["outputs"]
    assert yaml.safe_load((run.path / "config.yaml").read_text()) == {"seed": 3, "x": [1, 2]}
    events = [json.loads(line) for line in (run.path / "log.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "step" and events[0]["loss"] == 0.5


def test_input_hash_changes_with_content(tmp_path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("1")
    first = RunDir.create(tmp_path / "r1", {}, seed=0, inputs=[data], stage="t")
    data.write_text("2")
    second = RunDir.create(tmp_path / "r2", {}, seed=0, inputs=[data], stage="t")
    read = [json.loads((r.path / "manifest.json").read_text())["inputs"][str(data)] for r in (first, second)]
    assert read[0] != read[1]


def test_data_dir_follows_env(monkeypatch, tmp_path) -> None:
    (tmp_path / "mmlu").mkdir()
    monkeypatch.setenv("CCAI_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path.resolve()
    assert dataset_path("mmlu") == tmp_path.resolve() / "mmlu"
    with pytest.raises(DataNotFoundError, match="CCAI_DATA_DIR"):
        dataset_path("gsm8k")
