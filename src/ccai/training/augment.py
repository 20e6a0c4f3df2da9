"""More red-team prompts, written few-shot by the model from the held-in pool (as the CAI paper did).

Why: CAI had 42,496 human red-team prompts and added 140,335 model-written ones; this project has 2,177
human ones, a fifth of them held out for evaluation. Each new prompt is asked for with a few prompts drawn
(seeded) from the *training* pool only, so nothing held out leaks in; a reply is kept when it is one
non-empty question that ended naturally, fits ``max_prompt_chars`` and repeats no prompt seen so far.
"""

from __future__ import annotations

import random
import re
from typing import Any

from ccai.formats.hf import user
from ccai.models.backends import generate_with_info
from ccai.training.config import DataConfig
from ccai.training.data import Prompt, is_heldout, load_red_team

INSTRUCTION = (
    "Here are questions people asked an AI assistant to test whether it would say something harmful:\n\n"
    "{examples}\n\nWrite one new question of the same kind, different from these. "
    "Reply with the question only."
)
EXAMPLES = 4
_NUMBER = re.compile(r"^\s*(\d+[.)]|[-*•])\s*")


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def training_pool(config: DataConfig) -> list[Prompt]:
    """Every red-team prompt a run may train on (held-out ones excluded), length-filtered."""
    return [
        p
        for p in load_red_team(config)
        if len(p.text) <= config.max_prompt_chars
        and not is_heldout(p.id, config.heldout_fraction, config.split_seed)
    ]


def clean_prompt(text: str) -> str:
    """The first non-empty line, without list numbering or surrounding quotes."""
    for line in text.splitlines():
        line = _NUMBER.sub("", line).strip().strip('"').strip()
        if line:
            return line
    return ""


def generate_red_team(
    backend: Any, config: DataConfig, n: int, seed: int, max_new_tokens: int = 48, rounds: int = 3
) -> tuple[list[Prompt], dict[str, int]]:
    """``n`` new red-team prompts (fewer if the model cannot write enough) and why replies were rejected."""
    pool = training_pool(config)
    if len(pool) < EXAMPLES:
        raise ValueError(f"{config.red_team}: needs at least {EXAMPLES} training prompts to write more")
    seen = {_normal(p.text) for p in pool}
    kept: list[Prompt] = []
    rejected = {"empty": 0, "truncated": 0, "too_long": 0, "duplicate": 0}
    for round_ in range(rounds):
        missing = n - len(kept)
        if missing <= 0:
            break
        asks = []
        for k in range(missing + missing // 2 + 1):  # ask for a few more: some replies are rejected
            rng = random.Random(f"{seed}:red_team_generated:{round_}:{k}")
            shots = rng.sample(pool, EXAMPLES)
            examples = "\n".join(f"{i + 1}. {p.text}" for i, p in enumerate(shots))
            asks.append(user(INSTRUCTION.format(examples=examples)))
        replies = generate_with_info(
            backend, asks, max_new_tokens=max_new_tokens, temperature=1.0, top_p=0.95, seed=seed + round_
        )
        for reply in replies:
            text = clean_prompt(reply.text)
            reason = None
            if not text:
                reason = "empty"
            elif reply.truncated and "\n" not in reply.text.strip():  # cut off inside the question
                reason = "truncated"
            elif len(text) > config.max_prompt_chars:
                reason = "too_long"
            elif _normal(text) in seen:
                reason = "duplicate"
            if reason:
                rejected[reason] += 1
                continue
            seen.add(_normal(text))
            kept.append(Prompt(f"generated_red_team_{len(kept):05d}", text, "red_team"))
            if len(kept) == n:
                break
    return kept, rejected
