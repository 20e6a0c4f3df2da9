"""Model preparation: seeded tiny models, offline resolution, bf16 detection, the `ccai models` CLI."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from ccai.cli import app
from ccai.models.prepare import cpu_supports_bf16, resolve_model, tiny_model_dir
from ccai.training.runs import use_bf16


def test_tiny_model_is_seeded(tmp_path, tiny_model):
    again = tiny_model_dir(tmp_path / "same", seed=0)
    other = tiny_model_dir(tmp_path / "other", seed=1)
    a, b, c = (load_file(str(p / "model.safetensors")) for p in (tiny_model, again, other))
    key = "model.layers.0.mlp.up_proj.weight"
    assert torch.equal(a[key], b[key]) and not torch.equal(a[key], c[key])
    assert (tiny_model / "tokenizer.json").is_file()


def test_resolve_model_refuses_non_model_folders(tmp_path, tiny_model):
    assert resolve_model(tiny_model) == tiny_model
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model folder"):
        resolve_model(tmp_path)


def test_bf16_only_where_the_hardware_has_it():
    assert use_bf16(False, "cpu") is False and use_bf16(True, "cpu") is True
    assert use_bf16("auto", "cpu") == cpu_supports_bf16()


def test_models_cli_help_teaches():
    result = CliRunner().invoke(app, ["models", "prepare", "--help"])
    assert result.exit_code == 0 and "safetensors" in result.output and "Example" in result.output
