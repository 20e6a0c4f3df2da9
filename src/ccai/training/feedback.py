"""AI feedback: which of two responses better follows a constitution principle, as a soft probability.

The feedback model sees the conversation, one comparison principle drawn at random per comparison (the
paper's principle ensembling), and options (A)/(B); the probabilities of the answer tokens come from one
forward pass after the assistant prefix ``The answer is: (``. Each pair is asked in both orders and the two
estimates of P(first response better) are averaged, which cancels the position bias small models have.
With ``cot=True`` the model first writes its reasoning, the probabilities are read after it, and the result
is clamped to [0.4, 0.6] because chain-of-thought answers are over-confident (Bai et al. 2022, §4.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ccai.formats.hf import user
from ccai.training.sl_cai import draw_principle

QUESTION = (
    "Here is a conversation between a person and an AI assistant.\n\n"
    "Person: {prompt}\n\n"
    "{principle}\n\n"
    "Options:\n(A) {first}\n(B) {second}\n\n"
    "{instruction}"
)
ANSWER_ONLY = "Answer with (A) or (B)."
THINK_FIRST = "Think it through step by step in a few sentences, then answer with (A) or (B)."
PREFIX = "The answer is: ("
OPTIONS = ["A", "B"]
FEW_SHOT_PATH = Path(__file__).with_name("prompts") / "feedback_few_shot.yaml"


def demo_questions(n: int, instruction: str, path: Path = FEW_SHOT_PATH) -> list[dict[str, str]]:
    """The first ``n`` worked examples as chat turns: the question, then the answer after the prefix."""
    if n <= 0:
        return []
    examples = yaml.safe_load(path.read_text())["examples"]
    keys = {"prompt", "principle", "first", "second", "answer"}
    messages: list[dict[str, str]] = []
    for index, ex in enumerate(examples[:n]):
        if set(ex) != keys or ex["answer"] not in OPTIONS:
            raise ValueError(f"{path}: examples[{index}] needs exactly {sorted(keys)} and answer A or B")
        text = QUESTION.format(
            prompt=ex["prompt"],
            principle=ex["principle"],
            first=ex["first"],
            second=ex["second"],
            instruction=instruction,
        )
        messages += [*user(text), {"role": "assistant", "content": f"{PREFIX}{ex['answer']})"}]
    return messages


@dataclass
class Judgement:
    p_a: float  # P(response a is better), both orders averaged (and clamped in CoT mode)
    p_a_orders: list[float]  # [from the (a, b) order, from the (b, a) order]
    principle_id: str
    option_mass: float | None  # share of next-token probability on the option tokens (local backend only)
    reasoning: list[str]


class FeedbackLabeller:
    """Soft A/B labels from any :class:`~ccai.models.backends.Backend`."""

    def __init__(
        self,
        backend: Any,
        constitution: Any,
        *,
        seed: int = 0,
        cot: bool = False,
        clamp: tuple[float, float] = (0.4, 0.6),
        cot_max_new_tokens: int = 64,
        weighted: bool = False,
        few_shot: int = 0,
    ) -> None:
        if not constitution.principles:
            raise ValueError(f"constitution {constitution.name!r} has no principles to judge with")
        self.backend = backend
        self.constitution = constitution
        self.seed = seed
        self.cot = cot
        self.clamp = clamp
        self.cot_max_new_tokens = cot_max_new_tokens
        self.weighted = weighted
        self.demos = demo_questions(few_shot, ANSWER_ONLY)  # CoT reasons anew; its demos answer directly

    def question(self, prompt: str, first: str, second: str, principle: Any) -> list[dict[str, str]]:
        return self.demos + user(
            QUESTION.format(
                prompt=prompt,
                principle=principle.comparison,
                first=first,
                second=second,
                instruction=THINK_FIRST if self.cot else ANSWER_ONLY,
            )
        )

    def _first_option_probs(self, questions: list[list[dict[str, str]]], prefixes: list[str]) -> list[float]:
        """P(option A) for each question: one forward pass each (batched when the backend can)."""
        batch = getattr(self.backend, "choice_probs_batch", None)
        # local: batched forward passes; HTTP: concurrent requests. A per-question prefix (CoT) only goes
        # to backends that say they take one (older third-party backends take a single string).
        if batch is not None and len(set(prefixes)) == 1:
            return [p[0] for p in batch(questions, OPTIONS, prefixes[0])]
        if batch is not None and getattr(self.backend, "prefix_per_prompt", False):
            return [p[0] for p in batch(questions, OPTIONS, prefixes)]
        return [
            self.backend.choice_probs(q, OPTIONS, pre)[0] for q, pre in zip(questions, prefixes, strict=True)
        ]

    def judge(self, items: list[tuple[str, str, str, str]]) -> list[Judgement]:
        """``items``: (pair id, prompt, response a, response b). Returns one judgement per item."""
        principles = [
            draw_principle(self.constitution, self.seed, pid, "feedback", self.weighted) for pid, *_ in items
        ]
        questions = []
        for (_, prompt, a, b), principle in zip(items, principles, strict=True):
            questions += [self.question(prompt, a, b, principle), self.question(prompt, b, a, principle)]
        reasoning = [""] * len(questions)
        if self.cot:
            reasoning = self.backend.generate(
                questions, max_new_tokens=self.cot_max_new_tokens, temperature=0.0, seed=self.seed
            )
            prefixes = [f"{r.strip()}\nSo {PREFIX[0].lower()}{PREFIX[1:]}" for r in reasoning]
        else:
            prefixes = [PREFIX] * len(questions)
        first = self._first_option_probs(questions, prefixes)
        masses = getattr(self.backend, "last_option_mass", None)
        judgements = []
        for k, principle in enumerate(principles):
            ab, ba = first[2 * k], 1.0 - first[2 * k + 1]  # P(a better) from each order
            p_a = (ab + ba) / 2
            if self.cot:
                p_a = min(max(p_a, self.clamp[0]), self.clamp[1])
            mass = None
            if masses is not None and len(masses) == len(questions):
                mass = (masses[2 * k] + masses[2 * k + 1]) / 2
            judgements.append(
                Judgement(
                    p_a,
                    [ab, ba],
                    principle.id,
                    mass,
                    [reasoning[2 * k], reasoning[2 * k + 1]] if self.cot else [],
                )
            )
        return judgements
