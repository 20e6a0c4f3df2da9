"""Training-test fixtures: a tiny random Llama with the SmolLM2 tokenizer (built locally, no download)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ccai.models.prepare import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_backend(tiny_model: Path):
    from ccai.models.backends import TransformersBackend

    return TransformersBackend(tiny_model, batch_size=4)


@pytest.fixture(scope="session")
def constitution_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-principle constitution in the project's JSON exchange format."""
    from ccai.constitution import Constitution, Principle

    principles = [
        Principle(
            id=f"t{k}",
            comparison=f"Choose the response that is most {word}.",
            critique_request=f"Explain how the last answer could be more {word}.",
            revision_request=f"Rewrite the answer to be more {word}.",
        )
        for k, word in enumerate(["honest", "harmless", "respectful"])
    ]
    path = tmp_path_factory.mktemp("constitution") / "test.json"
    Constitution(name="test constitution", principles=principles).approve(by="ccai tests").save(path)
    return path
