"""The default method end to end on the tiny model: LoRA SFT, soft labels, soft-label DPO with the
helpfulness arm, plus the method options (revision pairs, labeller few-shot, weighted principles)."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from ccai.config import load_config
from ccai.training.config import TrainingConfig
from ccai.training.train import train


def test_default_lora_soft_label_path(tiny_model, constitution_file, tmp_path, shared_data):
    overrides = [
        f"model={tiny_model}",
        "bf16=false",
        "seed=1",
        "data.red_team_prompts=4",
        "data.helpful_prompts=6",  # 40 % red-team, the new default mix
        "data.max_pair_chars=400",
        "sl.generation.max_new_tokens=6",
        "sl.quality.drop_truncated=false",
        "sl.train.learning_rate=1e-3",
        "rl.generation.max_new_tokens=6",
        "rl.train.learning_rate=1e-3",
        "rl.train.max_length=256",
        "rl.pm_train.max_length=256",
        "rl.pm_eval_pairs=3",
        "rl.revision_pairs=true",
        "rl.few_shot=1",
        "principle_sampling=weighted",
        "data.generated_red_team=2",  # the random tiny model's attempts are cut off: all rejected, counted
    ]
    config = load_config(TrainingConfig, None, overrides)
    assert config.sl.train.lora and config.rl.train.lora and config.rl.soft_labels == "soft"
    assert config.rl.method == "dpo" and config.rl.reward_model
    result = train(config, constitution_file, tmp_path / "run", progress=False)
    run = result.run_dir
    done = json.loads((run / "state.json").read_text())["done"]
    assert set(done) >= {"sl_data", "sl_train", "rl_pairs", "rl_labels", "pm_train", "rl_train"}
    made = done["red_team_generated"]
    assert made["asked"] == 2 and made["kept"] + sum(made["rejected"].values()) >= 2
    assert done["sl_data"]["red_team"] == 4 + made["kept"] and done["sl_data"]["helpful"] == 6
    pairs = [json.loads(line) for line in (run / "data" / "rl_pairs.jsonl").read_text().splitlines()]
    sources = {p["source"] for p in pairs}
    assert {"ai_harmless", "human_helpful"} <= sources
    ai = [p for p in pairs if p["source"] == "ai_harmless"]
    assert any(0.5 <= p["soft_label"] < 1.0 for p in ai)  # soft labels, not binarised
    assert done["rl_labels"]["revision_pairs"] == sum(p["source"] == "revision" for p in pairs)
    assert done["pm_train"]["heldout_harmless_pairs"] == 3 and done["pm_train"]["heldout_helpful_pairs"] == 3
    sl, rl = (
        load_file(str(run / "sl" / "model" / "model.safetensors")),
        load_file(str(run / "rl" / "model" / "model.safetensors")),
    )
    base = load_file(str(tiny_model / "model.safetensors"))
    key = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(base[key], sl[key]) and not torch.equal(sl[key], rl[key])  # LoRA merged in
    assert "lora" not in " ".join(rl)  # a plain HF folder
    card = (run / "rl" / "model" / "README.md").read_text()
    assert "principle_sampling: weighted" in card and "human_helpful_pairs" in card and "rows_dropped" in card
    pm_card = (run / "pm" / "model" / "README.md").read_text()
    assert "heldout_harmless_accuracy" in pm_card and "heldout_helpful_accuracy" in pm_card
    assert result.summary["pm_train"]["heldout_helpful_accuracy"] is not None
