"""The whole study wired together: each stage reads what the previous one wrote."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from ccai.config import ConfigError, load_config
from ccai.pipeline import StudyConfig, run_study


def test_unknown_stage_and_typo_are_refused():
    with pytest.raises(ConfigError, match="stages"):
        load_config(StudyConfig, None, ["stages=[analysis,trainig]"])
    with pytest.raises(ConfigError, match="analysis.groupz"):
        load_config(StudyConfig, None, ["analysis.groupz=2"])


@pytest.mark.slow
def test_analysis_to_constitution_on_a_real_conversation(tmp_path, shared_data):
    config = load_config(StudyConfig, None, [
        f"analysis.export={shared_data / 'polis-opendata' / 'brexit-consensus'}",
        "analysis.exclude=null", "analysis.more_than=0", "analysis.moderation=polis",
        "analysis.groups=polis", "constitution.threshold=null", "constitution.count=12",
        "stages=[analysis,constitution]",
    ])
    result = run_study(config, tmp_path / "study")
    out = result.path
    assert (out / "analysis" / "report.html").exists()
    public = json.loads((out / "constitution" / "public.json").read_text())
    assert result.outputs["constitution"]["statements_selected"] == 12
    assert 1 <= len(public["principles"]) <= 12
    assert all(p["sources"] for p in public["principles"])  # provenance survives the pipeline
    assert all(p["comparison"].startswith("Choose the response") for p in public["principles"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"] == ["analysis", "constitution"] and manifest["inputs"]
    assert "analysis/report.html" in (out / "index.html").read_text()


@pytest.mark.slow
def test_whole_study_on_a_tiny_model(tmp_path, shared_data):
    """All four stages on real data and a tiny random model: the wiring, not the quality."""
    from ccai.models.prepare import tiny_model_dir

    model = tiny_model_dir(tmp_path / "tiny", seed=0)
    training = [
        f"training.model={model}", "training.bf16=false", "training.accept_unreviewed=true",
        "training.data.red_team_prompts=4",
        "training.data.helpful_prompts=2", "training.sl.generation.max_new_tokens=6",
        "training.sl.train.batch_size=2", "training.sl.train.max_length=160",
        "training.rl.generation.max_new_tokens=6", "training.rl.train.batch_size=2",
        "training.rl.train.max_length=400", "training.rl.pm_train.batch_size=2",
        "training.rl.pm_train.max_length=400", "training.rl.soft_labels=binarise",
        "training.sl.quality.drop_truncated=false",  # a tiny random model never ends within 6 tokens
    ]
    evaluation = [
        "evaluation.tasks=[mmlu,gsm8k,safety,helpfulness,adherence]", "evaluation.limit=2",
        "evaluation.adherence.pool_size=10",
        "evaluation.gsm8k.max_new_tokens=6", "evaluation.answers.max_new_tokens=6", "evaluation.bootstrap=20",
        f"evaluation.judge={model}", "evaluation.allow_contestant_judge=true",  # only one model here
    ]
    config = load_config(StudyConfig, None, [
        f"analysis.export={shared_data / 'polis-opendata' / 'brexit-consensus'}",
        "analysis.exclude=null", "analysis.more_than=0", "analysis.moderation=polis",
        "analysis.groups=polis", "constitution.threshold=null", "constitution.count=6",
        *training, *evaluation,
    ])
    result = run_study(config, tmp_path / "study")
    out = result.path
    trained = result.outputs["training"]
    assert set(trained) == {"public", "standard"}
    assert all((out / "training" / name / "manifest.json").exists() for name in trained)
    results = json.loads((out / "evaluation" / "results.json").read_text())
    assert [m["label"] for m in results["models"]] == ["base", "public", "standard"]
    assert results["seed"] == config.seed
    adherence = results["details"]["adherence"]["constitutions"]  # the study's own two constitutions
    assert [c["name"] for c in adherence] == ["public", "standard"]
    assert adherence[0]["groups"] and not adherence[1]["groups"]  # only statements carry group votes
    index = (out / "index.html").read_text()
    assert "evaluation/report.html" in index and "analysis/report.html" in index


@pytest.mark.slow
@pytest.mark.model
def test_study_through_training_side_by_side_on_a_cold_cache(tmp_path, shared_data, monkeypatch):
    """The newcomer's path: the bundled model, an empty cache, both constitutions trained at once.

    Both run processes need the bundled model at the same moment; before preparation was locked and done
    once in the parent, one deleted the other's half-converted folder (`No such file or directory`).
    """
    from ccai.models.prepare import SMOLLM2_DIRNAME, is_model_dir

    cache = tmp_path / "cold-cache"
    monkeypatch.setenv("CCAI_CACHE_DIR", str(cache))
    config = load_config(StudyConfig, None, [
        f"analysis.export={shared_data / 'polis-opendata' / 'brexit-consensus'}",
        "analysis.exclude=null", "analysis.more_than=0", "analysis.moderation=polis",
        "analysis.groups=polis", "constitution.threshold=null", "constitution.count=4",
        "stages=[analysis,constitution,training]", "jobs=2",
        "training.model=smollm2", "training.bf16=false", "training.accept_unreviewed=true",
        "training.sl.quality.drop_truncated=false",  # 4-token replies are always cut off
        "training.data.red_team_prompts=2",
        "training.data.helpful_prompts=1", "training.sl.generation.max_new_tokens=4",
        "training.sl.train.max_length=128", "training.rl.generation.max_new_tokens=4",
        "training.rl.train.max_length=192", "training.rl.pm_train.max_length=192",
        "training.rl.soft_labels=binarise",
    ])
    result = run_study(config, tmp_path / "study")
    assert sorted(result.outputs["training"]) == ["public", "standard"]
    assert is_model_dir(cache / "models" / SMOLLM2_DIRNAME)
    for name in ("public", "standard"):
        run = tmp_path / "study" / "training" / name
        stored = yaml.safe_load((run / "config.yaml").read_text())
        assert stored["threads"] == max(1, len(os.sched_getaffinity(0)) // 2)  # trained side by side
        assert (run / "rl" / "model" / "model.safetensors").is_file()
