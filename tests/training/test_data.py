"""Training prompts: real HH-RLHF red-team and AlpacaEval prompts, with a seeded, stable held-out split."""

from __future__ import annotations

import pytest

from ccai.training.config import DataConfig
from ccai.training.data import heldout_prompts, load_red_team, split_prompts


def test_split_is_seeded_and_never_leaks(shared_data):
    config = DataConfig(red_team_prompts=32, helpful_prompts=8)
    a, b = split_prompts(config, seed=1), split_prompts(config, seed=1)
    assert [p.id for p in a.red_team] == [p.id for p in b.red_team]
    assert [p.id for p in split_prompts(config, seed=2).red_team] != [p.id for p in a.red_team]
    held = {p.id for p in heldout_prompts("red_team", config)} | {
        p.id for p in heldout_prompts("helpful", config)
    }
    assert held and not held & {p.id for p in a.red_team + a.helpful}
    share = len(heldout_prompts("red_team", config)) / len(load_red_team(config))
    assert 0.15 < share < 0.25
    bigger = split_prompts(DataConfig(red_team_prompts=64, helpful_prompts=8), seed=1)
    assert {p.id for p in bigger.heldout_red_team} == {p.id for p in a.heldout_red_team}
    assert all(p.source == "helpful" for p in a.helpful) and len(a.helpful) == 8


def test_bad_prompt_files_are_refused(tmp_path, shared_data):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok", "id": "1"}\n{"prompt": ""}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected a non-empty string field 'prompt'"):
        split_prompts(DataConfig(red_team=str(bad), helpful_prompts=0, red_team_prompts=1), 0)
    with pytest.raises(ValueError, match="only"):
        split_prompts(DataConfig(red_team_prompts=100000, helpful_prompts=0), 0)
    with pytest.raises(FileNotFoundError):
        split_prompts(DataConfig(red_team=str(tmp_path / "none.jsonl")), 0)
