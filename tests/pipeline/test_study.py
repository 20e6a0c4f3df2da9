"""The whole study wired together: each stage reads what the previous one wrote."""

from __future__ import annotations

import json

import pytest

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
