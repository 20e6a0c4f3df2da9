"""Fixtures for the evaluation tests: a deterministic fake backend (a test double for the backend protocol,
used to check scorer logic with known answers) and the tiny random model for end-to-end runs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest


def _unit(*parts: object) -> float:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


class FakeBackend:
    """Implements generate / logprobs / choice_probs deterministically from hashes of the inputs.

    Each operation can be replaced by a function to build an "oracle" or a "biased" model whose right
    scores are known in advance.
    """

    def __init__(
        self,
        name: str = "fake",
        *,
        reply: Callable | None = None,
        logprob: Callable | None = None,
        choice: Callable | None = None,
    ) -> None:
        self.name = name
        self.reply = reply
        self.logprob = logprob
        self.choice = choice
        self.calls = {"generate": 0, "logprobs": 0, "choice_probs": 0}

    def generate(self, prompts, *, max_new_tokens, temperature=0.7, top_p=0.9, seed=0):
        self.calls["generate"] += len(prompts)
        out = []
        for messages in prompts:
            text = messages[-1]["content"]
            if self.reply is not None:
                out.append(self.reply(text))
            else:
                salt = seed if temperature > 0 else 0
                out.append(f"Answer {int(_unit(self.name, text, salt) * 100)}. #### {int(_unit(text) * 10)}")
        return out

    def logprobs(self, contexts, continuations):
        self.calls["logprobs"] += len(contexts)
        if self.logprob is not None:
            return [self.logprob(c, x) for c, x in zip(contexts, continuations, strict=True)]
        return [-5 * _unit(self.name, c, x) for c, x in zip(contexts, continuations, strict=True)]

    def choice_probs(self, prompt_messages, options, assistant_prefix):
        self.calls["choice_probs"] += 1
        if self.choice is not None:
            weights = self.choice(prompt_messages[-1]["content"], options)
        else:
            weights = [0.05 + _unit(self.name, prompt_messages[-1]["content"], o) for o in options]
        total = sum(weights)
        return [w / total for w in weights]


@pytest.fixture
def fake_backend() -> type[FakeBackend]:
    return FakeBackend


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama with the SmolLM2 tokenizer, saved as a Hugging Face folder (no download)."""
    from ccai.models.prepare import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model", seed=0)
