"""GSM8K: grade-school maths by generation, scored on the final number (Cobbe et al. 2021).

The protocol is the standard 8-shot chain of thought (Wei et al. 2022), exactly as lm-evaluation-harness's
``gsm8k_cot`` task writes it, so numbers compare with published ones: eight worked exemplars (public data,
reproduced below), each ``"Q: <question>\nA: <reasoning> The answer is <n>."``, joined by blank lines, then
``"Q: <question>\nA:"``; greedy decoding that stops at the next ``"Q:"``. A local model continues this raw
text (no chat template, as the harness does by default); a chat-only server gets the exemplars as earlier
user/assistant turns (the harness's ``--fewshot_as_multiturn``), and each record says which.

The answer is read as the harness reads it: "strict" is the number in ``The answer is <n>.``; "flexible" is
the last number in the reply. The reference is the number after ``####`` (the official regex). Both
accuracies are reported.
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
STOP = "Q:"

_STRICT = re.compile(r"The answer is (\-?[0-9\.\,]+)\.")
_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_CALC = re.compile(r"<<[^>]*>>")

#: the eight chain-of-thought exemplars of Wei et al. (2022), as lm-evaluation-harness's gsm8k_cot uses them
EXEMPLARS = (
    (
        "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are "
        "done, there will be 21 trees. How many trees did the grove workers plant today?",
        "There are 15 trees originally. Then there were 21 trees after some more were planted. So there "
        "must have been 21 - 15 = 6. The answer is 6.",
    ),
    (
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking "
        "lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in "
        "total?",
        "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After "
        "eating 35, they had 74 - 35 = 39. The answer is 39.",
    ),
    (
        "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many "
        "lollipops did Jason give to Denny?",
        "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny "
        "20 - 12 = 8. The answer is 8.",
    ),
    (
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does "
        "he have now?",
        "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. "
        "5 + 4 = 9. The answer is 9.",
    ),
    (
        "There were nine computers in the server room. Five more computers were installed each day, from "
        "monday to thursday. How many computers are now in the server room?",
        "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 "
        "computers were added. 9 + 20 is 29. The answer is 29.",
    ),
    (
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How "
        "many golf balls did he have at the end of wednesday?",
        "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing "
        "2 more, he had 35 - 2 = 33 golf balls. The answer is 33.",
    ),
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 "
        "dollars left. 23 - 15 is 8. The answer is 8.",
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
    """(answer, rule): the number in "The answer is <n>." ("strict"), else the last number ("flexible")."""
    match = _STRICT.search(text)
    if match:
        return normalize_number(match.group(1)), "strict"
    numbers = [m.group(0) for m in _FLEXIBLE.finditer(text)]
    if numbers:
        return normalize_number(numbers[-1]), "flexible"
    return INVALID, "none"


def few_shot_text(question: str, shots: int = 8) -> str:
    """The harness's gsm8k_cot prompt: ``shots`` exemplars, then the question, ending in ``A:``."""
    blocks = [f"Q: {q}\nA: {a}" for q, a in EXEMPLARS[:shots]]
    return "\n\n".join([*blocks, f"Q: {question}\nA:"])


def cut_at_stop(text: str) -> str:
    """The completion up to the next exemplar (the harness's ``until: ["Q:"]``), stripped."""
    return text.split(STOP, 1)[0].strip()


def strip_calculator(solution: str) -> str:
    """Remove the ``<<expr=result>>`` calculator annotations from a reference solution."""
    return _CALC.sub("", solution)


class GSM8K(Task):
    name = "gsm8k"
    title = "GSM8K (generation, final number)"
    table_rows = (
        ("strict_accuracy", "GSM8K accuracy % (8-shot CoT, strict: 'The answer is N.')", True),
        ("accuracy", "GSM8K accuracy % (8-shot CoT, flexible: last number)", True),
    )

    def __init__(
        self, shots: int = 8, max_new_tokens: int = 256, batch_size: int = 8, form: str = "raw"
    ) -> None:
        self.form = form
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
        """The chat form of the same prompt (exemplars as earlier turns) for servers without raw text."""
        turns: list[dict[str, str]] = []
        for q, a in EXEMPLARS[: self.shots]:
            turns += [{"role": "user", "content": f"Q: {q}\nA:"}, {"role": "assistant", "content": a}]
        return turns + [{"role": "user", "content": f"Q: {question}\nA:"}]

    def run(self, backend: Any, samples: list[Sample], *, seed: int, progress: Any) -> list[dict[str, Any]]:
        raw = getattr(backend, "generate_texts", None) if self.form == "raw" else None
        records = []
        for chunk in chunks(samples, self.batch_size):
            if raw is not None:
                replies = raw(
                    [few_shot_text(s.data["question"], self.shots) for s in chunk],
                    max_new_tokens=self.max_new_tokens,
                    temperature=0.0,
                    seed=seed,
                )
            else:
                replies = backend.generate(
                    [self.messages(s.data["question"]) for s in chunk],
                    max_new_tokens=self.max_new_tokens,
                    temperature=0.0,
                    seed=seed,
                )
            for sample, reply in zip(chunk, replies, strict=True):
                reply = cut_at_stop(reply)
                answer, rule = extract_answer(reply)
                records.append(
                    {
                        "id": sample.id,
                        "reference": sample.data["reference"],
                        "answer": answer,
                        "rule": rule,
                        "correct": answer == sample.data["reference"],
                        "strict_correct": rule == "strict" and answer == sample.data["reference"],
                        "prompt_form": "raw text" if raw is not None else "chat turns",
                        "completion": reply,
                    }
                )
            progress(len(chunk))
        return records

    def statistics(self) -> dict[str, Any]:
        return {"accuracy": mean_of("correct"), "strict_accuracy": mean_of("strict_correct")}

    def summarize(self, records: list[dict[str, Any]], *, seed: int) -> TaskOutput:
        rules = {rule: sum(r["rule"] == rule for r in records) for rule in ("strict", "flexible", "none")}
        measures = {
            "accuracy": proportion(
                [r["correct"] for r in records], note="'The answer is N.', else the last number"
            ),
            "strict_accuracy": proportion(
                [r["strict_correct"] for r in records], note="'The answer is N.' only"
            ),
        }
        forms = sorted({r.get("prompt_form", "") for r in records})
        details = {
            "rules_used": rules,
            "greedy": True,
            "shots": self.shots,
            "protocol": "gsm8k_cot",
            "forms": forms,
        }
        return TaskOutput(records, measures, details)
