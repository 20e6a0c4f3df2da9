"""The real SmolLM2-135M-Instruct (bundled GGUF -> cached safetensors): a full SL + RL run on 16 prompts.

Marked `model`: loads the real model (a one-off ~30 s conversion when the cache is empty). Generations are
kept short so the whole run stays within a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def smollm2():
    from ccai.models.prepare import prepare_smollm2

    return prepare_smollm2()


def test_prepared_model_is_a_plain_trainable_folder(smollm2):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(smollm2)
    assert not hasattr(config, "quantization_config") and config.num_hidden_layers == 30
    assert (smollm2 / "tokenizer.json").is_file() and (smollm2 / "model.safetensors").is_file()


def test_full_sl_and_rl_run_on_16_prompts(smollm2, constitution_file, tmp_path, shared_data):
    from ccai.config import load_config
    from ccai.training.config import TrainingConfig
    from ccai.training.train import train

    config = load_config(
        TrainingConfig,
        None,
        [
            "data.red_team_prompts=16",
            "data.helpful_prompts=2",
            "sl.few_shot=1",
            "sl.generation.max_new_tokens=20",
            "sl.train.epochs=2",
            "sl.train.max_length=256",
            "rl.generation.max_new_tokens=20",
            "rl.train.learning_rate=2e-4",
            "rl.train.max_length=256",
            "rl.pm_train.max_length=256",
            "rl.soft_labels=binarise",
            "rl.train.save_steps=100",
            "sl.train.save_steps=100",
            "rl.pm_train.save_steps=100",
        ],
    )
    result = train(config, constitution_file, tmp_path / "run", progress=False)
    done = result.summary
    assert done["sl_data"]["red_team"] == 16
    assert done["sl_train"]["loss_after"] < done["sl_train"]["loss_before"]
    assert done["rl_train"]["loss_after"] < done["rl_train"]["loss_before"]
    base, sl, rl = (
        load_file(str(p / "model.safetensors")) for p in (smollm2, result.sl_model, result.rl_model)
    )
    key = "model.layers.10.mlp.down_proj.weight"
    assert not torch.equal(base[key], sl[key]) and not torch.equal(sl[key], rl[key])
    rows = [json.loads(line) for line in (result.run_dir / "data" / "sl_cai.jsonl").read_text().splitlines()]
    assert all(r["completion"][0]["content"].strip() for r in rows)
    assert 0.0 <= done["rl_labels"]["mean_p_a"] <= 1.0 and done["rl_labels"]["mean_option_mass"] > 0.5
