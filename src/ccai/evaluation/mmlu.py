"""MMLU, 5-shot, answered by the log-likelihood of the option letters (Hendrycks et al. 2021).

The prompt follows the authors' ``evaluate.py``: a header naming the subject, the subject's five dev
examples in file order, then the test question ending in ``Answer:``; the prediction is the letter among
" A" / " B" / " C" / " D" with the highest next-token log-probability. Scoring letters (not generated text)
is what makes small models measurable at all, and it is what lm-evaluation-harness does too.
"""

from __future__ import annotations

import csv
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from ccai.datasets import dataset_path
from ccai.evaluation.stats import Measure, mean_of, proportion
from ccai.evaluation.tasks import Sample, Task, TaskOutput, argmax, chunks, option_logprobs

CHOICES = ("A", "B", "C", "D")


def read_mmlu_csv(path: Path) -> list[dict[str, str]]:
    """Rows of one MMLU CSV (no header: question, A, B, C, D, answer); bad rows name the file and line."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if len(row) != 6:
                raise ValueError(
                    f"{path}: row {number}: expected 6 columns (question,A,B,C,D,answer), got {len(row)}"
                )
            if row[5].strip() not in CHOICES:
                raise ValueError(f"{path}: row {number}: answer must be one of A/B/C/D, got {row[5]!r}")
            rows.append(
                {
                    "question": row[0],
                    "A": row[1],
                    "B": row[2],
                    "C": row[3],
                    "D": row[4],
                    "answer": row[5].strip(),
                }
            )
    return rows


def subject_title(subject: str) -> str:
    """``high_school_physics`` -> ``high school physics`` (single spaces; the original had a double space)."""
    return subject.replace("_", " ")


def format_question(row: dict[str, str], with_answer: bool) -> str:
    text = row["question"].strip() + "".join(f"\n{c}. {row[c]}" for c in CHOICES) + "\nAnswer:"
    return text + (f" {row['answer']}\n\n" if with_answer else "")


def build_prompt(subject: str, shots: list[dict[str, str]], row: dict[str, str]) -> str:
    header = f"The following are multiple choice questions (with answers) about {subject_title(subject)}.\n\n"
    return header + "".join(format_question(s, True) for s in shots) + format_question(row, False)


class MMLU(Task):
    name = "mmlu"
    needs = "log-probabilities of the prompt's continuations (/v1/completions with echo and logprobs)"
    title = "MMLU (5-shot, letter log-likelihood)"
    table_rows = (
        ("accuracy", "MMLU accuracy % (micro)", True),
        ("macro_accuracy", "MMLU accuracy % (macro)", True),
    )

    def __init__(self, shots: int = 5, max_prompt_tokens: int | None = None, batch_size: int = 8) -> None:
        if not 0 <= shots <= 5:
            raise ValueError(f"mmlu.shots: expected 0..5 (the dev split has 5 per subject), got {shots}")
        self.shots = shots
        self.max_prompt_tokens = max_prompt_tokens
        self.batch_size = batch_size

    @cached_property
    def categories(self) -> dict[str, dict[str, str]]:
        return json.loads(dataset_path("mmlu", "subject_categories.json").read_text())["subjects"]

    @cached_property
    def dev(self) -> dict[str, list[dict[str, str]]]:
        folder = dataset_path("mmlu", "dev")
        return {p.name[: -len("_dev.csv")]: read_mmlu_csv(p) for p in sorted(folder.glob("*_dev.csv"))}

    def load(self) -> list[Sample]:
        folder = dataset_path("mmlu", "test")
        samples = []
        for path in sorted(folder.glob("*_test.csv")):
            subject = path.name[: -len("_test.csv")]
            for index, row in enumerate(read_mmlu_csv(path)):
                samples.append(Sample(f"{subject}/{index}", subject, {"subject": subject, **row}))
        if not samples:
            raise FileNotFoundError(f"{folder}: no *_test.csv files found")
        return samples

    def prompt(self, sample: Sample, tokenizer: Any = None, limit: int | None = None) -> tuple[str, int]:
        """The k-shot prompt and k; dev examples are dropped from the end while it is too long."""
        subject = sample.data["subject"]
        shots = self.dev.get(subject, [])[: self.shots]
        text = build_prompt(subject, shots, sample.data)
        while tokenizer is not None and limit and shots and len(tokenizer(text)["input_ids"]) > limit:
            shots = shots[:-1]
            text = build_prompt(subject, shots, sample.data)
        return text, len(shots)

    def run(self, backend: Any, samples: list[Sample], *, seed: int, progress: Any) -> list[dict[str, Any]]:
        tokenizer = getattr(backend, "tokenizer", None)
        limit = self.max_prompt_tokens
        if limit is None:  # a local model knows its context; an HTTP backend's ``model`` is just a name
            model_config = getattr(getattr(backend, "model", None), "config", None)
            limit = getattr(model_config, "max_position_embeddings", None)
        records = []
        for chunk in chunks(samples, self.batch_size):
            prompts = [self.prompt(s, tokenizer, limit) for s in chunk]
            scores = option_logprobs(backend, [p for p, _ in prompts], [f" {c}" for c in CHOICES])
            for sample, (_, k), lps in zip(chunk, prompts, scores, strict=True):
                pred = CHOICES[argmax(lps)]
                records.append(
                    {
                        "id": sample.id,
                        "subject": sample.data["subject"],
                        "shots": k,
                        "answer": sample.data["answer"],
                        "prediction": pred,
                        "correct": pred == sample.data["answer"],
                        "logprobs": dict(zip(CHOICES, [round(x, 4) for x in lps], strict=True)),
                    }
                )
            progress(len(chunk))
        return records

    def statistics(self) -> dict[str, Any]:
        def macro(records: list[dict[str, Any]]) -> float | None:
            by_subject: dict[str, list[bool]] = {}
            for r in records:
                by_subject.setdefault(r["subject"], []).append(bool(r["correct"]))
            values = [100.0 * sum(v) / len(v) for v in by_subject.values()]
            return sum(values) / len(values) if values else None

        return {"accuracy": mean_of("correct"), "macro_accuracy": macro}

    def summarize(self, records: list[dict[str, Any]], *, seed: int) -> TaskOutput:
        by_subject: dict[str, list[bool]] = {}
        for r in records:
            by_subject.setdefault(r["subject"], []).append(bool(r["correct"]))
        per_subject = {s: proportion(v).to_dict() for s, v in sorted(by_subject.items())}
        by_category: dict[str, list[bool]] = {}
        for subject, flags in by_subject.items():
            category = self.categories.get(subject, {}).get("category", "unknown")
            by_category.setdefault(category, []).extend(flags)
        macro = [100.0 * sum(v) / len(v) for v in by_subject.values()]
        measures = {
            "accuracy": proportion([bool(r["correct"]) for r in records], note="micro average over items"),
            "macro_accuracy": Measure(
                sum(macro) / len(macro) if macro else None,
                n=len(records),
                note=f"mean over {len(macro)} subjects",
            ),
        }
        details = {
            "per_subject": per_subject,
            "per_category": {c: proportion(v).to_dict() for c, v in sorted(by_category.items())},
            "prediction_counts": {c: sum(r["prediction"] == c for r in records) for c in CHOICES},
        }
        return TaskOutput(records, measures, details)
