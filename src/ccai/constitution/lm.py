"""Optional LM help for the builder: rewrite statements into principles and propose merged wording.

The rules in :mod:`ccai.constitution.rewrite` are the default because they are deterministic and auditable. A
language model can do freer rewrites; here it is a training backend (``ccai.models.backends``: a local
Hugging Face model, or any OpenAI-compatible server as ``openai:URL#MODEL``) asked greedily (temperature 0,
fixed seed), so the same model gives the same principles. Nothing the model says is used silently: every
answer is stored on its principle (``metadata.rewrite.lm_answer``) or merge (``wording_by`` in the review
file) and checked (:mod:`ccai.constitution.lm_check`); an answer that fails a check is rejected in favour of
the rule-based one, with the reasons recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

LM_PROMPT = (
    "Rewrite the statement below as a principle for comparing two AI assistant responses. Start with "
    "'Choose the response that', change as few words as possible, keep the meaning, one sentence.\n\n"
    "Statement: {statement}\nPrinciple:"
)
LEGAL_PROMPT = (
    "Rewrite this provision of a national constitution as a principle for comparing two AI assistant "
    "responses. Start with 'Choose the response that', keep the provision's own words where possible, one "
    "sentence.\n\nProvision ({article}): {text}\nPrinciple:"
)
MERGE_PROMPT = (
    "These statements from the public say nearly the same thing. Write one principle for comparing two AI "
    "assistant responses that keeps what all of them ask for, in their words where possible. Start with "
    "'Choose the response that', one sentence.\n\n{statements}\nPrinciple:"
)


#: the first words of every answer (prefilled for local models)
ANSWER_START = "Choose the response that"


def ask(lm: Callable[[list[str]], list[str]], prompts: list[str]) -> list[str]:
    """One batch of prompts to ``lm``, checking that it answered each one."""
    answers = list(lm(prompts)) if prompts else []
    if len(answers) != len(prompts):
        raise ValueError(f"the LM gave {len(answers)} answers for {len(prompts)} prompts")
    return answers


class BackendLM:
    """A training backend seen as the builder's LM: a batch of prompts in, one answer per prompt out."""

    def __init__(self, backend: Any, max_new_tokens: int = 64, seed: int = 0) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self.seed = seed

    def __call__(self, prompts: list[str]) -> list[str]:
        conversations = [[{"role": "user", "content": p}] for p in prompts]
        options = {"max_new_tokens": self.max_new_tokens, "temperature": 0.0, "seed": self.seed}
        if hasattr(self.backend, "render") and hasattr(self.backend, "generate_texts"):
            # a local model: open its answer with the principle's first words, so that a small model
            # continues a principle instead of restating the statement (SmolLM2-135M does without this)
            texts = [self.backend.render(c, assistant_prefix=ANSWER_START) for c in conversations]
            return [f"{ANSWER_START} {a.strip()}" for a in self.backend.generate_texts(texts, **options)]
        return self.backend.generate(conversations, **options)

    def merge_wording(self, statements: list[str]) -> str:
        """One proposed comparison text for a group of near-duplicate statements (checked by the caller)."""
        listed = "\n".join(f"- {s}" for s in statements)
        return self([MERGE_PROMPT.format(statements=listed)])[0]


def load_backend_lm(model: Path | str, max_new_tokens: int = 64, seed: int = 0) -> BackendLM:
    """The builder's LM over a local model folder, 'smollm2' (the bundled one) or ``openai:URL#MODEL`` (any
    OpenAI-compatible server, e.g. ``ccai models serve``; the answer is not prefilled there, so the "is it
    a principle" check sees the model's own first words)."""
    from ccai.models.backends import make_backend

    return BackendLM(make_backend(str(model)), max_new_tokens=max_new_tokens, seed=seed)
