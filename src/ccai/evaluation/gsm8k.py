"""GSM8K: grade-school maths by generation, scored on the final number (Cobbe et al. 2021).

The reference answer is the number after ``####``. A model's answer is read the same way; a model that does
not write ``####`` (most small chat models) is scored on the last number in its reply, and each record says
which rule was used, so the strict and the lenient accuracy are both reported.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from ccai.datasets import dataset_path
from ccai.evaluation.stats import mean_of, proportion
from ccai.evaluation.tasks import Sample, Task, TaskOutput, chunks

INVALID = "[invalid]"
INSTRUCTION = "Solve the problem step by step. Finish with a final line of the form '#### <number>'."

_HASHES = re.compile(r"####\s*\$?\s*([\-\u2212]?\s*[0-9][0-9\.\,]*)")
_NUMBER = re.compile(r"[\-\u2212]?\$?\s?[0-9][0-9,]*(?:\.[0-9]+)?")
_CALC = re.compile(r"<<[^>]*>>")

# Worked examples written for this project (not taken from the GSM8K train split), used as few-shot turns.
EXEMPLARS = (
    (
        "A baker makes 24 rolls in the morning and 18 in the afternoon. She sells 35. How many rolls are "
        "left?",
        "She makes 24 + 18 = 42 rolls. After selling 35 she has 42 - 35 = 7 rolls left.\n#### 7",
    ),
    (
        "Tom reads 15 pages a day. How many days does he need for a book of 120 pages?",
        "Each day covers 15 pages, so he needs 120 / 15 = 8 days.\n#### 8",
    ),
    (
        "A ticket costs $12 and a drink costs $3. How much do 4 tickets and 2 drinks cost?",
        "Tickets cost 4 * 12 = $48. Drinks cost 2 * 3 = $6. Together 48 + 6 = $54.\n#### 54",
    ),
    (
        "The temperature was 5 degrees and fell by 9 degrees overnight. What is the temperature now?",
        "It fell below zero: 5 - 9 = -4 degrees.\n#### -4",
    ),
)


def normalize_number(text: str) -> str:
    """Canonical form of a number string: no commas, ``$`` or trailing dot; "5.00" -> "5"; "-0" -> "0".

    Exact-string comparison (the official rule) would count "$5.00" against "5" as wrong; comparing the
    canonical forms does not, and otherwise agrees with it.
    """
    cleaned = text.replace("\u2212", "-").replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return cleaned
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def reference_answer(solution: str) -> str:
    """The number after ``####`` in a reference solution (the official regex), normalised."""
    match = re.search(r"#### (\-?[0-9\.\,]+)", solution)
    return normalize_number(match.group(1).strip()) if match else INVALID


def extract_answer(text: str) -> tuple[str, str]:
    """(answer, rule): the first ``####`` number ("####"), else the text's last number ("last_number")."""
    match = _HASHES.search(text)
    if match:
        return normalize_number(match.group(1)), "####"
    numbers = _NUMBER.findall(text)
    if numbers:
        return normalize_number(numbers[-1]), "last_number"
    return INVALID, "none"


def strip_calculator(solution: str) -> str:
    """Remove the ``<<expr=result>>`` calculator annotations from a reference solution."""
    return _CALC.sub("", solution)


class GSM8K(Task):
    name = "gsm8k"
    title = "GSM8K (generation, final number)"
    table_rows = (
        ("accuracy", "GSM8K accuracy % (#### or last number)", True),
        ("strict_accuracy", "GSM8K accuracy % (#### only)", True),
    )

    def __init__(self, shots: int = 2, max_new_tokens: int = 256, batch_size: int = 8) -> None:
        if not 0 <= shots <= len(EXEMPLARS):
            raise ValueError(f"gsm8k.shots: expected 0..{len(EXEMPLARS)}, got {shots}")
        self.shots = shots
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def load(self) -> list[Sample]:
        path = dataset_path("gsm8k", "test.jsonl")
        samples = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    row = json.loads(line)
                    question, solution = row["question"], row["answer"]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ValueError(
                        f"{path}: line {number}: expected JSON with 'question' and 'answer' ({exc})"
                    ) from exc
                samples.append(
                    Sample(
                        f"test/{number - 1}",
                        "all",
                        {"question": question, "reference": reference_answer(solution)},
                    )
                )
        return samples

    def messages(self, question: str) -> list[dict[str, str]]:
        turns: list[dict[str, str]] = []
        for q, a in EXEMPLARS[: self.shots]:
            turns += [
                {"role": "user", "content": f"{q}\n\n{INSTRUCTION}"},
                {"role": "assistant", "content": a},
            ]
        return turns + [{"role": "user", "content": f"{question}\n\n{INSTRUCTION}"}]

    def run(self, backend: Any, samples: list[Sample], *, seed: int, progress: Any) -> list[dict[str, Any]]:
        records = []
        for chunk in chunks(samples, self.batch_size):
            replies = backend.generate(
                [self.messages(s.data["question"]) for s in chunk],
                max_new_tokens=self.max_new_tokens,
                temperature=0.0,
                seed=seed,
            )
            for sample, reply in zip(chunk, replies, strict=True):
                answer, rule = extract_answer(reply)
                records.append(
                    {
                        "id": sample.id,
                        "reference": sample.data["reference"],
                        "answer": answer,
                        "rule": rule,
                        "correct": answer == sample.data["reference"],
                        "strict_correct": rule == "####" and answer == sample.data["reference"],
                        "completion": reply,
                    }
                )
            progress(len(chunk))
        return records

    def statistics(self) -> dict[str, Any]:
        return {"accuracy": mean_of("correct"), "strict_accuracy": mean_of("strict_correct")}

    def summarize(self, records: list[dict[str, Any]], *, seed: int) -> TaskOutput:
        rules = {rule: sum(r["rule"] == rule for r in records) for rule in ("####", "last_number", "none")}
        measures = {
            "accuracy": proportion(
                [r["correct"] for r in records], note="'####' answer, else the last number"
            ),
            "strict_accuracy": proportion([r["strict_correct"] for r in records], note="'####' answers only"),
        }
        return TaskOutput(records, measures, {"rules_used": rules, "greedy": True, "shots": self.shots})
