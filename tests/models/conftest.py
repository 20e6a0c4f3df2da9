"""Serving-test fixtures: tiny random Llamas with the SmolLM2 tokenizer (built locally, no download)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ccai.models.prepare import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Different weights (another seed): a second model to route to."""
    from ccai.models.prepare import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("tiny-other") / "model", seed=1)


@pytest.fixture()
def tiny_backend(tiny_model: Path):
    """A fresh backend per test, so wrapping its model to count calls never leaks into another test."""
    from ccai.models.backends import TransformersBackend

    return TransformersBackend(tiny_model, batch_size=1)
