"""Each stage has one entry: run from its own command or from the study, it writes the same folder."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from ccai.cli import app
from ccai.config import ConfigError, load_config
from ccai.pipeline import StudyConfig, run_study

RUNNER = CliRunner()
#: What may differ between two runs of the same stage: when and how long, and where the files were read.
_RUN_FIELDS = {"created", "started", "finished", "seconds", "inputs", "input_hashes", "argv", "host", "t"}


def _comparable(path):
    if path.name == "manifest.json":
        data = json.loads(path.read_text())
        return {k: v for k, v in data.items() if k not in _RUN_FIELDS}
    if path.name == "log.jsonl":
        return [{k: v for k, v in json.loads(line).items() if k not in _RUN_FIELDS}
                for line in path.read_text().splitlines()]
    return path.read_bytes()


def _same_folder(a, b):
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for name in files_a:
        assert _comparable(a / name) == _comparable(b / name), name


@pytest.mark.slow
def test_analysis_and_constitution_write_the_same_folders_either_way(tmp_path, shared_data):
    export = shared_data / "polis-opendata" / "brexit-consensus"
    one = RUNNER.invoke(app, ["analyze", str(export), "--out", str(tmp_path / "cli" / "analysis"),
                              "--groups", "polis", "--moderation", "polis", "--more-than", "0"])
    assert one.exit_code == 0, one.output
    two = RUNNER.invoke(app, ["constitution", "build", "--analysis", str(tmp_path / "cli" / "analysis"),
                              "--count", "6", "--consultation", "brexit", "--out",
                              str(tmp_path / "cli" / "constitution")])
    assert two.exit_code == 0, two.output

    config = load_config(StudyConfig, None, [
        f"analysis.export={export}", "analysis.exclude=null", "analysis.more_than=0",
        "analysis.moderation=polis", "analysis.groups=polis", "constitution.threshold=null",
        "constitution.count=6", "constitution.consultation=brexit", "stages=[analysis,constitution]",
    ])
    run_study(config, tmp_path / "study")
    for stage in ("analysis", "constitution"):
        _same_folder(tmp_path / "cli" / stage, tmp_path / "study" / stage)
    files = {p.name for p in (tmp_path / "study" / "constitution").iterdir()}
    assert {"config.yaml", "manifest.json", "log.jsonl", "public.json", "standard.json", "selection.csv",
            "review.yaml", "compare_standard.html"} <= files
    stored = yaml.safe_load((tmp_path / "study" / "analysis" / "config.yaml").read_text())
    assert stored["seed"] == config.seed and "export" not in stored


def test_a_study_has_one_seed_and_one_held_out_split():
    config = load_config(StudyConfig, None, ["seed=7", "training.data.heldout_fraction=0.3"])
    sections = (config.analysis, config.constitution, config.training, config.evaluation)
    assert {section.seed for section in sections} == {7}
    assert config.evaluation.heldout_fraction == 0.3
    with pytest.raises(ConfigError, match="training.seed"):
        load_config(StudyConfig, None, ["training.seed=3"])
    with pytest.raises(ConfigError, match="heldout"):
        load_config(StudyConfig, None, ["evaluation.heldout_fraction=0.5"])
