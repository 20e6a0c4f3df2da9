"""Human comparisons from HH-RLHF: the helpfulness arm of RL-CAI and the preference model's held-out check.

Why: CAI trained its preference model on human *helpfulness* comparisons mixed with AI *harmlessness* labels;
that mix is what keeps RL-CAI harmless but not evasive. Harmlessness-only RL rewards refusals. The helpful
test splits (``helpfulness_prefs``) supply the helpfulness comparisons; the harmless-base test pairs
(``hh_rlhf``) are only ever used to score the preference model on held-out human judgements.

Rules from the data READMEs: ties (``chosen == rejected``) are dropped; so is every pair whose opening human
turn is an AlpacaEval prompt (the evaluation set). Pairs are held out by a seeded hash of the opening human
turn (a harmless pair by the id of its red-team prompt), so one conversation opening is never on both sides
and a harmless pair is held out exactly when its red-team prompt is held out of training.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccai.datasets import dataset_path
from ccai.training.config import DataConfig
from ccai.training.data import _resolve, is_heldout

_TURN = re.compile(r"\n\n(Human|Assistant): ")


@dataclass(frozen=True)
class HumanPair:
    id: str
    prompt: list[dict[str, str]]  # the shared conversation, ending with a user turn
    chosen: str
    rejected: str
    key: str  # what the held-out split hashes

    def row(self, source: str) -> dict[str, Any]:
        """A ``preference`` row (ccai.formats.hf): a human label is certain, so the soft label is 1."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
            "soft_label": 1.0,
            "p_a": 1.0,
            "response_a": self.chosen,
            "response_b": self.rejected,
            "source": source,
        }


def parse_transcript(text: str) -> list[dict[str, str]]:
    """``"\\n\\nHuman: …\\n\\nAssistant: …"`` as chat messages (empty list when it does not parse)."""
    parts = _TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        return []
    roles = {"Human": "user", "Assistant": "assistant"}
    return [{"role": roles[parts[k]], "content": parts[k + 1].strip()} for k in range(1, len(parts) - 1, 2)]


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def evaluation_prompts(config: DataConfig) -> set[str]:
    """Normalised AlpacaEval instructions: conversations opening with one are never trained on."""
    try:
        path = _resolve(config.helpful)
    except FileNotFoundError:
        return set()
    found = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                found.add(_normal(str(row.get("instruction") or row.get("prompt") or "")))
    return found


def _pairs_in(path: Path, max_chars: int, exclude: set[str]) -> tuple[list[HumanPair], dict[str, int]]:
    pairs: list[HumanPair] = []
    skipped = {"ties": 0, "evaluation_overlap": 0, "unparsed": 0, "too_long": 0}
    stem = path.name.split(".")[0].replace("-", "_")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                chosen, rejected = row["chosen"], row["rejected"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(
                    f"{path}:{index + 1}: expected a JSON object with 'chosen' and 'rejected'"
                ) from None
            if chosen == rejected:
                skipped["ties"] += 1
                continue
            a, b = parse_transcript(chosen), parse_transcript(rejected)
            ends = {a[-1]["role"], b[-1]["role"]} if a and b else set()
            if not a or not b or a[:-1] != b[:-1] or ends != {"assistant"}:
                skipped["unparsed"] += 1  # "\n\nAssistant:" inside a reply: the turns cannot be split safely
                continue
            if not a[-1]["content"] or not b[-1]["content"] or a[-1]["content"] == b[-1]["content"]:
                skipped["ties"] += 1
                continue
            if _normal(a[0]["content"]) in exclude:
                skipped["evaluation_overlap"] += 1
                continue
            if len(chosen) > max_chars or len(rejected) > max_chars:
                skipped["too_long"] += 1
                continue
            pairs.append(
                HumanPair(f"{stem}_{index:05d}", a[:-1], a[-1]["content"], b[-1]["content"], a[0]["content"])
            )
    return pairs, skipped


def _resolve_any(spec: str) -> Path:
    """A file or folder: a local path, else a shared data set name (``name/sub/path``)."""
    path = Path(spec).expanduser()
    if path.is_absolute() or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"{path}: comparison data not found")
        return path
    name, _, rest = spec.partition("/")
    return dataset_path(name, *rest.split("/")) if rest else dataset_path(name)


def helpful_pairs(config: DataConfig) -> tuple[list[HumanPair], list[HumanPair], dict[str, int]]:
    """(training pool, held-out, skipped counts) of human helpfulness comparisons."""
    root = _resolve_any(config.helpful_prefs)
    files = sorted(root.glob("*.jsonl.gz")) if root.is_dir() else [root]
    if not files:
        raise FileNotFoundError(f"{root}: no *.jsonl.gz comparison files")
    exclude = evaluation_prompts(config)
    pool: list[HumanPair] = []
    skipped: dict[str, int] = {}
    for path in files:
        pairs, counts = _pairs_in(path, config.max_pair_chars, exclude)
        pool += pairs
        skipped = {k: skipped.get(k, 0) + v for k, v in counts.items()}
    held = [p for p in pool if is_heldout(_normal(p.key), config.heldout_fraction, config.split_seed)]
    train = [p for p in pool if not is_heldout(_normal(p.key), config.heldout_fraction, config.split_seed)]
    return train, held, skipped


def heldout_harmless_pairs(config: DataConfig) -> list[HumanPair]:
    """Harmless-base comparisons whose red-team prompt is held out of training (never seen by any run)."""
    from ccai.training.data import load_red_team

    held_rows: set[int] = set()
    red_path = _resolve(config.red_team)
    with open(red_path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            held = is_heldout(str(row.get("id")), config.heldout_fraction, config.split_seed)
            if "source_rows" in row and held:
                held_rows.update(int(k) for k in row["source_rows"])
    if not held_rows:  # a prompt file without row links: fall back to matching the opening turn
        held_text = {
            _normal(p.text)
            for p in load_red_team(config)
            if is_heldout(p.id, config.heldout_fraction, config.split_seed)
        }
    pairs, _ = _pairs_in(_resolve_any(config.harmless_prefs), config.max_pair_chars, set())
    return [
        p
        for p in pairs
        if (int(p.id.rsplit("_", 1)[1]) in held_rows if held_rows else _normal(p.key) in held_text)
    ]


def sample(pairs: list[HumanPair], n: int, seed: int, purpose: str) -> list[HumanPair]:
    """A seeded sample of ``n`` pairs (all of them when fewer)."""
    if n >= len(pairs):
        return list(pairs)
    return random.Random(f"{seed}:{purpose}").sample(pairs, n)
