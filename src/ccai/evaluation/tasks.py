"""An evaluation is a Task: its data (as Samples), how it prompts a model, and how it scores the answers.

Every benchmark module (mmlu, gsm8k, bbq, opinionqa, refusal) defines one :class:`Task` subclass. The runner
(:mod:`ccai.evaluation.runner`) draws a seeded stratified sample, runs the task once per model and keeps the
per-sample records, so the report and anyone auditing it read the same log. The shared helpers below turn the
backend protocol (``generate`` / ``logprobs`` / ``choice_probs``) into the operations benchmarks need.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ccai.evaluation.sampling import stratified_sample
from ccai.evaluation.stats import Measure

Messages = list[dict[str, str]]
Progress = Callable[[int], None]

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Sample:
    """One benchmark item. ``id`` is stable across runs (it is what the log records); ``stratum`` drives
    the stratified ``--limit`` sample; ``data`` holds the task's own fields."""

    id: str
    stratum: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskOutput:
    """What a task returns for one model: per-sample records, summary measures, task-specific details."""

    records: list[dict[str, Any]]
    measures: dict[str, Measure]
    details: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    """A benchmark: ``load`` the items, ``run`` them on a backend, ``summarize`` the records."""

    name: str = ""
    title: str = ""
    #: (measure key, row label in Table 1, whether higher is better; None when it depends on the prompt)
    table_rows: tuple[tuple[str, str, bool | None], ...] = ()
    #: whether the outputs are a deterministic function of the model files (then a repeated model is reused)
    deterministic: bool = True
    #: what the task asks of a backend beyond generating text ("" = nothing); named in the reason recorded
    #: when an OpenAI-compatible server cannot provide it and the task is skipped for that model
    needs: str = ""

    @abstractmethod
    def load(self) -> list[Sample]:
        """All items of the benchmark, in a fixed order."""

    def sample(self, limit: int | None, seed: int) -> list[Sample]:
        return stratified_sample(self.load(), lambda s: s.stratum, limit, seed)

    @abstractmethod
    def run(
        self, backend: Any, samples: list[Sample], *, seed: int, progress: Progress
    ) -> list[dict[str, Any]]:
        """One record per sample: at least ``id`` plus what the scorer needs."""

    @abstractmethod
    def summarize(self, records: list[dict[str, Any]], *, seed: int) -> TaskOutput:
        """Measures over the records (with intervals)."""

    def statistics(self) -> dict[str, Callable[[list[dict[str, Any]]], float | None]]:
        """Measure key -> the measure as a function of a list of records.

        The runner uses these for paired comparisons: it resamples the items both models answered and
        recomputes each measure for both, so the difference gets its own interval (see ``stats``).
        """
        return {}

    def evaluate(
        self, backend: Any, samples: list[Sample], *, seed: int, progress: Progress = lambda n: None
    ) -> TaskOutput:
        return self.summarize(self.run(backend, samples, seed=seed, progress=progress), seed=seed)


# -- answers in free text ------------------------------------------------------------------------------

_ANSWER_IS = re.compile(
    r"answer\s*(?:is|:)\s*:?\s*(?:option\s*)?[\(\[]?\s*([A-Za-z])\s*[\)\]]?(?![A-Za-z])", re.IGNORECASE
)
_PAREN = re.compile(r"[\(\[]\s*([A-Za-z])\s*[\)\]]")
_START = re.compile(r"^\s*(?:\*\*)?([A-Za-z])(?:\*\*)?\s*(?=$|[\.\):,;\n])")
_LONE_CAPITAL = re.compile(r"(?<![A-Za-z'])([A-Z])(?![A-Za-z'])")


def extract_choice(text: str, letters: str = "ABCD") -> str | None:
    """The option letter a free-text answer names, or None.

    Rules, first match wins: "answer is (B)" / "Answer: b"; a bracketed letter "(B)"; a reply that starts
    with a lone letter followed by punctuation or the end ("B", " b.", "C)"); a lone capital letter elsewhere
    ("I pick D because"). The capital "A" followed by a lower-case word is the article, not an answer.
    Only letters in ``letters`` count.
    """
    allowed = letters.upper()
    for pattern in (_ANSWER_IS, _PAREN, _START):
        for match in pattern.finditer(text):
            letter = match.group(1).upper()
            if letter in allowed:
                return letter
    for match in _LONE_CAPITAL.finditer(text):
        letter = match.group(1)
        if letter not in allowed:
            continue
        after = text[match.end() : match.end() + 2]
        if letter == "A" and re.match(r"\s[a-z]", after):
            continue
        return letter
    return None


# -- scoring through the backend protocol --------------------------------------------------------------


def _single_token_ids(tokenizer: Any, context: str, options: Sequence[str]) -> list[int] | None:
    """Token ids when every ``context + option`` is ``context``'s tokens plus exactly one token."""
    base = tokenizer(context, add_special_tokens=False)["input_ids"]
    ids = []
    for option in options:
        whole = tokenizer(context + option, add_special_tokens=False)["input_ids"]
        if len(whole) != len(base) + 1 or whole[: len(base)] != base:
            return None
        ids.append(whole[-1])
    return ids


def option_logprobs(
    backend: Any, contexts: Sequence[str], options: Sequence[str], batch_size: int = 8
) -> list[list[float]]:
    """log p(option | context) for every context and option (raw text, no chat template).

    With a local transformers model and single-token options (" A" ... " D") all options are read from one
    forward pass per context, as the original MMLU code did; otherwise each (context, option) pair goes
    through ``backend.logprobs``. Both give the same numbers (tested).
    """
    model = getattr(backend, "model", None)
    tokenizer = getattr(backend, "tokenizer", None)
    if model is not None and tokenizer is not None and hasattr(model, "forward"):
        fast = _fast_option_logprobs(model, tokenizer, contexts, options, batch_size)
        if fast is not None:
            return fast
    flat_ctx = [c for c in contexts for _ in options]
    flat_opt = [o for _ in contexts for o in options]
    flat = backend.logprobs(flat_ctx, flat_opt)
    k = len(options)
    return [list(flat[i * k : (i + 1) * k]) for i in range(len(contexts))]


def _fast_option_logprobs(
    model: Any, tokenizer: Any, contexts: Sequence[str], options: Sequence[str], batch_size: int
) -> list[list[float]] | None:
    import torch

    encoded, option_ids = [], []
    for context in contexts:
        ids = _single_token_ids(tokenizer, context, options)
        if ids is None:
            return None
        option_ids.append(ids)
        encoded.append(tokenizer(context, add_special_tokens=False)["input_ids"])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    results: list[list[float]] = [[] for _ in contexts]
    device = getattr(model, "device", "cpu")
    for batch in token_batches([len(e) for e in encoded], batch_size):
        width = max(len(encoded[i]) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
            mask[row, width - len(encoded[i]) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            logits = (
                model(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    position_ids=positions.to(device),
                    logits_to_keep=1,
                )
                .logits[:, -1]
                .float()
            )
        logp = torch.log_softmax(logits, dim=-1)
        for row, i in enumerate(batch):
            results[i] = [float(logp[row, t]) for t in option_ids[i]]
    return results


def token_batches(lengths: Sequence[int], max_batch: int, max_tokens: int = 2048) -> list[list[int]]:
    """Indices grouped by similar length, at most ``max_batch`` per group and ``max_tokens`` padded tokens.

    On a CPU a batch of long prompts costs memory (attention grows with length squared) and buys no speed;
    long 5-shot MMLU prompts therefore go one at a time while short ones share a batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) >= max_batch or (len(current) + 1) * lengths[i] > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


#: what ``choice_distributions`` asks of an OpenAI-compatible server (vLLM and ``serve_openai`` give it)
CHOICE_NEEDS = (
    "log-probabilities of the option letters after an answer prefix (/v1/chat/completions with "
    "continue_final_message and top_logprobs)"
)


def choice_distributions(
    backend: Any, prompts: Sequence[Messages], options: Sequence[str], assistant_prefix: str
) -> list[list[float]]:
    """``backend.choice_probs`` for many prompts (batched when the backend offers ``choice_probs_batch``)."""
    batched = getattr(backend, "choice_probs_batch", None)
    if batched is not None:
        return [list(p) for p in batched(list(prompts), list(options), assistant_prefix)]
    return [list(backend.choice_probs(list(p), list(options), assistant_prefix)) for p in prompts]


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Consecutive slices of ``items``; the runner's progress bar advances once per chunk."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value; ties go to the first (deterministic)."""
    best = 0
    for i, value in enumerate(values):
        if value > values[best]:
            best = i
    return best
