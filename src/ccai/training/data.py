"""Training prompts: red-team prompts (HH-RLHF harmless-base) and helpful prompts (AlpacaEval), split.

The held-out split is decided per prompt id by a seeded hash, so it does not depend on how many prompts a
run uses: a prompt held out for evaluation is never trained on by any run with the same ``split_seed``.
The evaluation stage can call :func:`heldout_prompts` to get exactly the prompts training never saw.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from ccai.datasets import dataset_path
from ccai.formats.hf import iter_json_lines
from ccai.training.config import DataConfig


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    source: str  # "red_team" | "helpful"


def _read_jsonl(path: Path, text_key: str, id_key: str | None, source: str) -> list[Prompt]:
    prompts = []
    for number, row in iter_json_lines(path):
        text = row.get(text_key)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{path}:{number}: expected a non-empty string field {text_key!r}")
        pid = str(row[id_key]) if id_key and id_key in row else f"{path.stem}_{number - 1:05d}"
        prompts.append(Prompt(pid, text.strip(), source))
    return prompts


def _resolve(spec: str) -> Path:
    path = Path(spec).expanduser()
    if path.is_absolute() or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: prompt file not found")
        return path
    name, _, rest = spec.partition("/")
    return dataset_path(name, *rest.split("/")) if rest else dataset_path(name)


def load_red_team(config: DataConfig) -> list[Prompt]:
    return _read_jsonl(_resolve(config.red_team), "prompt", "id", "red_team")


def load_helpful(config: DataConfig) -> list[Prompt]:
    path = _resolve(config.helpful)
    with open(path, encoding="utf-8") as handle:
        first = json.loads(handle.readline() or "{}")
    key = "instruction" if "instruction" in first else "prompt"
    prompts = _read_jsonl(path, key, "id" if "id" in first else None, "helpful")
    return [
        Prompt(f"alpaca_{p.id}" if not p.id.startswith("alpaca") else p.id, p.text, p.source) for p in prompts
    ]


def is_heldout(prompt_id: str, fraction: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


@dataclass
class PromptSplit:
    red_team: list[Prompt]
    helpful: list[Prompt]
    heldout_red_team: list[Prompt]
    heldout_helpful: list[Prompt]

    def counts(self) -> dict[str, int]:
        return {
            "red_team": len(self.red_team),
            "helpful": len(self.helpful),
            "heldout_red_team": len(self.heldout_red_team),
            "heldout_helpful": len(self.heldout_helpful),
        }


def split_prompts(config: DataConfig, seed: int) -> PromptSplit:
    """Held-out split by id hash, then a seeded sample of the training pool of the sizes asked for."""

    def part(prompts: list[Prompt], n: int) -> tuple[list[Prompt], list[Prompt]]:
        usable = [p for p in prompts if len(p.text) <= config.max_prompt_chars]
        held = [p for p in usable if is_heldout(p.id, config.heldout_fraction, config.split_seed)]
        pool = [p for p in usable if not is_heldout(p.id, config.heldout_fraction, config.split_seed)]
        if n > len(pool):
            raise ValueError(
                f"asked for {n} training prompts but only {len(pool)} are available "
                f"(after the held-out split and max_prompt_chars={config.max_prompt_chars})"
            )
        chosen = random.Random(f"{seed}:{prompts[0].source if prompts else ''}").sample(pool, n)
        return chosen, held

    red, red_held = part(load_red_team(config), config.red_team_prompts)
    helpful, helpful_held = ([], [])
    if config.helpful_prompts:
        helpful, helpful_held = part(load_helpful(config), config.helpful_prompts)
    return PromptSplit(red, helpful, red_held, helpful_held)


def heldout_prompts(kind: str = "red_team", config: DataConfig | None = None) -> list[Prompt]:
    """Prompts no training run with this split ever sees (for evaluation)."""
    config = config or DataConfig()
    if kind == "red_team":
        prompts = load_red_team(config)
    elif kind == "helpful":
        prompts = load_helpful(config)
    else:
        raise ValueError(f"kind: expected 'red_team' or 'helpful', got {kind!r}")
    return [p for p in prompts if is_heldout(p.id, config.heldout_fraction, config.split_seed)]
