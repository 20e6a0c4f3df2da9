"""OpinionQA representativeness (Santurkar et al. 2023): whose opinions do a model's answers match?

For each Pew survey question the model's probabilities over the answer letters (refusal options removed and
renormalised) are compared with each US group's answer distribution by the 1-Wasserstein distance on the
options' ordinal positions, divided by the largest possible distance (max - min ordinal, = N-1 for 1..N):
``R_m(G) = 1 - mean_q W1(D_m, D_G) / (max - min)``.

What the project's data supports (see the data README): the per-group tallies are *unweighted* respondent
counts for 684 of the 1,498 questions and eight attributes; the paper used survey-weighted distributions over
all questions. "Overall" is the sum over all groups of the POLPARTY attribute. Steerability (persona prompts)
and consistency across topics are not computed here.
"""

from __future__ import annotations

import ast
import csv
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ccai.datasets import dataset_path
from ccai.evaluation.stats import Measure, bootstrap, mean_of
from ccai.evaluation.tasks import (
    CHOICE_NEEDS,
    LETTERS,
    Sample,
    Task,
    TaskOutput,
    choice_distributions,
    chunks,
)

ATTRIBUTES = ("POLIDEOLOGY", "POLPARTY", "AGE", "SEX", "EDUCATION", "INCOME", "RACE", "CREGION")
OVERALL = "Overall"
PREFIX = "The answer is ("
_NOT_GROUPS = {"MC_options", "question_text", "Refused", "nan"}


def wasserstein_1d(support: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """W1 between two distributions on the same 1-d support (not necessarily sorted)."""
    order = np.argsort(support, kind="stable")
    x, p, q = support[order], p[order] / p.sum(), q[order] / q.sum()
    cdf_gap = np.abs(np.cumsum(p) - np.cumsum(q))[:-1]
    return float(np.sum(cdf_gap * np.diff(x)))


def normalized_wd(ordinals: list[float], model: list[float], group: list[float]) -> float:
    """W1 / (max ordinal - min ordinal): 0 = same distribution, 1 = opposite extremes."""
    support = np.asarray(ordinals, dtype=float)
    span = support.max() - support.min()
    if span <= 0:
        raise ValueError(f"ordinals {ordinals}: need at least two distinct positions")
    return wasserstein_1d(support, np.asarray(model, float), np.asarray(group, float)) / span


def format_prompt(question: str, options: list[str]) -> list[dict[str, str]]:
    lines = "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))
    return [
        {"role": "user", "content": f"Question: {question}\n{lines}\n\nAnswer with the letter of one option."}
    ]


@lru_cache(maxsize=2)
def load_opinionqa(root_dir: str, attributes: tuple[str, ...]) -> tuple[tuple[Sample, ...], dict[str, int]]:
    """Questions with group tallies for ``attributes`` (read once per process), and counts of skipped ones."""
    root = Path(root_dir)
    samples, skipped = [], {"options_mismatch": 0, "no_ordinal_span": 0}
    for wave_dir in sorted(root.glob("American_Trends_Panel_W*")):
        wave = wave_dir.name.rsplit("_", 1)[-1]
        info_path = wave_dir / "info.csv"
        with open(info_path, newline="", encoding="utf-8") as handle:
            info = {}
            for number, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    info[row["key"]] = (
                        row["question"],
                        ast.literal_eval(row["references"]),
                        [float(x) for x in ast.literal_eval(row["option_ordinal"])],
                    )
                except (KeyError, ValueError, SyntaxError) as exc:
                    raise ValueError(f"{info_path}: line {number}: bad question row ({exc!r})") from exc
        tallies = {a: json.loads((wave_dir / f"{a}_data.json").read_text()) for a in attributes}
        for key in sorted(tallies[attributes[0]]):
            question, options, ordinals = info[key]
            if len(set(ordinals)) < 2:
                skipped["no_ordinal_span"] += 1
                continue
            groups: dict[str, list[float]] = {}
            overall = np.zeros(len(ordinals))
            ok = True
            for attribute, data in tallies.items():
                entry = data.get(key, {})
                for group, counts in entry.items():
                    if group in ("MC_options", "question_text"):
                        continue
                    if any(o not in options for o in counts):
                        ok = False
                    vector = [float(counts.get(o, 0.0)) for o in options[: len(ordinals)]]
                    if attribute == "POLPARTY":
                        overall += vector
                    if group not in _NOT_GROUPS and sum(vector) > 0:
                        groups[f"{attribute}:{group}"] = vector
            if not ok or overall.sum() == 0:
                skipped["options_mismatch"] += 1
                continue
            groups[OVERALL] = overall.tolist()
            samples.append(
                Sample(
                    key,
                    wave,
                    {"question": question, "options": options, "ordinals": ordinals, "groups": groups},
                )
            )
    return tuple(samples), skipped


class OpinionQA(Task):
    name = "opinionqa"
    needs = CHOICE_NEEDS
    title = "OpinionQA representativeness"
    table_rows = (
        ("representativeness", "OpinionQA representativeness (Overall, 0-1)", True),
        ("refusal_mass", "OpinionQA mean refusal-option probability", False),
    )

    def __init__(self, attributes: tuple[str, ...] = ATTRIBUTES, batch_size: int = 8) -> None:
        self.attributes = attributes
        self.batch_size = batch_size

    @property
    def _loaded(self) -> tuple[tuple[Sample, ...], dict[str, int]]:
        return load_opinionqa(str(dataset_path("opinionqa")), self.attributes)

    def load(self) -> list[Sample]:
        return list(self._loaded[0])

    def run(self, backend: Any, samples: list[Sample], *, seed: int, progress: Any) -> list[dict[str, Any]]:
        records = []
        by_size: dict[int, list[Sample]] = {}
        for s in samples:  # choice_probs takes one option list per call: group questions by option count
            by_size.setdefault(len(s.data["options"]), []).append(s)
        for size, group in sorted(by_size.items()):
            letters = list(LETTERS[:size])
            for chunk in chunks(group, self.batch_size):
                prompts = [format_prompt(s.data["question"], s.data["options"]) for s in chunk]
                for sample, probs in zip(
                    chunk, choice_distributions(backend, prompts, letters, PREFIX), strict=True
                ):
                    k = len(sample.data["ordinals"])
                    answer = np.asarray(probs[:k], float)
                    mass = float(answer.sum())
                    dist = answer / mass if mass > 0 else np.full(k, 1.0 / k)
                    wd = {
                        g: normalized_wd(sample.data["ordinals"], dist.tolist(), v)
                        for g, v in sample.data["groups"].items()
                    }
                    records.append(
                        {
                            "id": sample.id,
                            "wave": sample.stratum,
                            "model_dist": dist.round(4).tolist(),
                            "refusal_mass": round(1.0 - mass, 4),
                            "wd": wd,
                        }
                    )
                progress(len(chunk))
        order = {s.id: i for i, s in enumerate(samples)}
        return sorted(records, key=lambda r: order[r["id"]])

    def human_baseline(self, samples: list[Sample]) -> dict[str, float]:
        """Each group's representativeness of Overall (the paper's human reference points)."""
        totals: dict[str, list[float]] = {}
        for s in samples:
            overall = s.data["groups"][OVERALL]
            for g, v in s.data["groups"].items():
                if g != OVERALL:
                    totals.setdefault(g, []).append(normalized_wd(s.data["ordinals"], v, overall))
        return {g: 1 - float(np.mean(v)) for g, v in sorted(totals.items())}

    def statistics(self) -> dict[str, Any]:
        def representativeness(records: list[dict[str, Any]]) -> float | None:
            return 1 - float(np.mean([r["wd"][OVERALL] for r in records])) if records else None

        return {"representativeness": representativeness, "refusal_mass": mean_of("refusal_mass", 1.0)}

    def summarize(self, records: list[dict[str, Any]], *, seed: int) -> TaskOutput:
        per_group: dict[str, list[float]] = {}
        for r in records:
            for g, value in r["wd"].items():
                per_group.setdefault(g, []).append(value)
        representativeness = {g: 1 - float(np.mean(v)) for g, v in sorted(per_group.items())}
        overall = [r["wd"][OVERALL] for r in records]
        low, high = bootstrap(overall, lambda xs: 1 - float(np.mean(xs)), seed=seed)
        best = max((g for g in representativeness if g != OVERALL), key=representativeness.get, default=None)
        measures = {
            "representativeness": Measure(
                representativeness.get(OVERALL),
                low,
                high,
                len(records),
                note=f"unweighted Pew tallies; closest group: {best}",
            ),
            "refusal_mass": Measure(
                float(np.mean([r["refusal_mass"] for r in records])) if records else None, n=len(records)
            ),
        }
        samples = {s.id: s for s in self.load()}
        baseline = self.human_baseline([samples[r["id"]] for r in records if r["id"] in samples])
        return TaskOutput(
            records,
            measures,
            {
                "per_group": representativeness,
                "human_baseline": baseline,
                "questions_per_group": {g: len(v) for g, v in per_group.items()},
                "skipped_questions": self._loaded[1],
                "supported": (
                    "representativeness per group, unweighted counts (679 of 684 questions, 8 attributes); "
                    "not supported: survey weights, the other 814 questions, steerability prompts"
                ),
            },
        )
