"""Micro-batching for the OpenAI-compatible server: requests that arrive together share one ``generate`` call.

Why not call :meth:`TransformersBackend.generate_texts` per request: a small model on a CPU or GPU decodes
eight rows in barely more time than one, so answering concurrent clients one at a time wastes most of the
hardware. A single worker thread per loaded model (the model is not thread-safe) takes the first waiting
request, waits a short window for others, and decodes them as one left-padded batch.

Each row keeps its own sampling settings, its own ``max_tokens`` and its own seeded random generator: the
token choice is made per row by :class:`RowSampler` (a logits processor that returns a one-hot score, so the
library's greedy step takes exactly the token chosen). A request's reply therefore depends on its own seed,
never on which other requests happened to share its batch (up to floating-point differences from padding),
and a greedy reply equals the backend's own greedy ``generate``. The same processor reports each chosen
token as it is made, which is how replies are streamed while the batch decodes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: How many tokens are sorted when cutting the top-p nucleus before falling back to a full sort.
_NUCLEUS_CANDIDATES = 128


@dataclass
class TokenEvent:
    """One generated token as the sampler chose it (``logprob``/``top`` only when asked for)."""

    token_id: int
    logprob: float | None = None
    top: list[tuple[int, float]] | None = None


@dataclass
class GenerationJob:
    """One row of a batch: already-tokenised prompt, sampling settings, and where its tokens go."""

    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    logprobs: bool = False
    top_logprobs: int = 0
    on_token: Callable[[TokenEvent], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    # filled in by the worker
    tokens: list[TokenEvent] = field(default_factory=list)
    finish_reason: str = ""
    #: the end-of-sequence choice with its log-probabilities, when ``logprobs`` was asked for (the A/B
    #: labeller reads the first position's top tokens even when the model would stop there)
    stop_event: TokenEvent | None = None

    def token_ids(self) -> list[int]:
        return [t.token_id for t in self.tokens]


def _draw(probs: Any, gen: Any) -> int:
    """One index drawn in proportion to ``probs`` from one uniform number of ``gen`` (inverse CDF):
    ``torch.multinomial`` took 50 ms per row per step over SmolLM2's 49k-token vocabulary on a CPU."""
    import torch

    cdf = probs.cumsum(-1)
    u = torch.rand(1, generator=gen, device=probs.device, dtype=cdf.dtype) * cdf[-1]
    return int(torch.searchsorted(cdf, u).clamp(max=probs.shape[-1] - 1))


class RowSampler:
    """A logits processor choosing each row's next token itself (greedy or seeded top-p sampling).

    It returns scores that are ``-inf`` everywhere but the chosen token, so the caller runs the library's
    generation loop greedily. Rows that reached their own ``max_tokens`` or were cancelled are sent to the
    end-of-sequence token; rows already finished are ignored.
    """

    def __init__(self, jobs: list[GenerationJob], eos_id: int, device: Any) -> None:
        import torch

        self.jobs = jobs
        self.eos_id = eos_id
        self.done = [False] * len(jobs)
        self.generators: list[Any] = []
        for job in jobs:
            gen = None
            if job.temperature > 0:
                gen = torch.Generator(device=device)
                gen.manual_seed(int(job.seed) % (2**63))
            self.generators.append(gen)

    def _sample(self, row: Any, job: GenerationJob, gen: Any) -> int:
        import torch

        logits = row.float() / job.temperature
        probs = torch.softmax(logits, dim=-1)
        if job.top_p < 1.0:
            k = min(_NUCLEUS_CANDIDATES, probs.shape[-1])
            top, index = probs.topk(k)
            if float(top.sum()) < job.top_p:  # the nucleus reaches past the candidates: sort everything
                top, index = probs.sort(descending=True)
            keep = (top.cumsum(-1) - top) < job.top_p
            return int(index[keep][_draw(top[keep], gen)])
        return _draw(probs, gen)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        chosen = scores.argmax(dim=-1).tolist()
        need_logprobs = any(j.logprobs for j in self.jobs)
        logp = torch.log_softmax(scores.float(), dim=-1) if need_logprobs else None
        for i, job in enumerate(self.jobs):
            if self.done[i]:
                chosen[i] = self.eos_id
                continue
            if job.cancelled.is_set() or len(job.tokens) >= job.max_tokens:
                self.done[i] = True
                job.finish_reason = job.finish_reason or (
                    "length" if not job.cancelled.is_set() else "cancelled"
                )
                chosen[i] = self.eos_id
                continue
            if job.temperature > 0:
                chosen[i] = self._sample(scores[i], job, self.generators[i])
            token = chosen[i]
            event = TokenEvent(token)
            if logp is not None and job.logprobs:
                event.logprob = float(logp[i, token])
                if job.top_logprobs:
                    values, index = logp[i].topk(job.top_logprobs)
                    event.top = [(int(t), float(v)) for v, t in zip(values, index, strict=True)]
            if token == self.eos_id:
                self.done[i] = True
                job.finish_reason = "stop"
                job.stop_event = event if job.logprobs else None
                continue
            job.tokens.append(event)
            if job.on_token is not None:
                job.on_token(event)
        forced = torch.full_like(scores, -float("inf"))
        forced[torch.arange(len(chosen)), torch.tensor(chosen, device=scores.device)] = 0.0
        return forced


def generate_batch(model: Any, tokenizer: Any, jobs: list[GenerationJob]) -> None:
    """Decode ``jobs`` as one left-padded batch; each job's ``tokens`` and ``finish_reason`` are filled in."""
    import torch
    from transformers import LogitsProcessorList

    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    width = max(len(j.prompt_ids) for j in jobs)
    ids = torch.full((len(jobs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(jobs), width), dtype=torch.long)
    for k, job in enumerate(jobs):
        ids[k, width - len(job.prompt_ids) :] = torch.tensor(job.prompt_ids, dtype=torch.long)
        mask[k, width - len(job.prompt_ids) :] = 1
    sampler = RowSampler(jobs, eos, model.device)
    with torch.no_grad():
        model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            do_sample=False,
            max_new_tokens=max(j.max_tokens for j in jobs),
            pad_token_id=pad,
            eos_token_id=eos,
            logits_processor=LogitsProcessorList([sampler]),
        )
    for job in jobs:
        if not job.finish_reason:  # the longest rows end on the overall length limit
            job.finish_reason = "length" if len(job.tokens) >= job.max_tokens else "stop"


class QueueFull(RuntimeError):
    """The worker's queue is at its bound; the caller should answer 503 with Retry-After."""


@dataclass
class WorkerStats:
    """What the worker did, for tests, logs and the bench: the size of every generation batch it ran."""

    batch_sizes: list[int] = field(default_factory=list)
    tokens: int = 0


class BatchWorker:
    """One thread owning one model: generation jobs are batched, other model calls run one at a time.

    ``submit_generation`` and ``submit_call`` return at once; ``done`` (a callable taking the job or the
    call's result, or the exception) is called from the worker thread when the work is finished.
    """

    def __init__(
        self, model: Any, tokenizer: Any, *, max_batch: int = 16, window_s: float = 0.01, max_queue: int = 64
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max(1, int(max_batch))
        self.window_s = max(0.0, float(window_s))
        self.max_queue = max(1, int(max_queue))
        self.stats = WorkerStats()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._waiting = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- submitting -----------------------------------------------------------------------------------
    def _admit(self) -> None:
        with self._lock:
            if self._waiting >= self.max_queue:
                raise QueueFull(f"{self._waiting} requests are already waiting (limit {self.max_queue})")
            self._waiting += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ccai-batch-worker", daemon=True)
                self._thread.start()

    def submit_generation(self, job: GenerationJob, done: Callable[[Any], None]) -> None:
        self._admit()
        self._queue.put(("generate", job, done))

    def submit_call(self, fn: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self._admit()
        self._queue.put(("call", fn, done))

    def waiting(self) -> int:
        with self._lock:
            return self._waiting

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)
        self._thread = None

    # -- the worker thread ----------------------------------------------------------------------------
    def _release(self, n: int) -> None:
        with self._lock:
            self._waiting -= n

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if item[0] == "call":
                self._call(item)
                continue
            batch, calls = [item], []
            deadline = time.monotonic() + self.window_s
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                (batch if more[0] == "generate" else calls).append(more)
            self._generate(batch)
            for call in calls:
                self._call(call)

    def _call(self, item: tuple[str, Any, Callable[[Any], None]]) -> None:
        _, fn, done = item
        try:
            result = fn()
        except Exception as exc:  # handed to the request, which answers with an error
            result = exc
        self._release(1)
        done(result)

    def _generate(self, batch: list[tuple[str, Any, Callable[[Any], None]]]) -> None:
        jobs = [job for _, job, _ in batch]
        try:
            generate_batch(self.model, self.tokenizer, jobs)
            outcome: list[Any] = jobs
        except Exception as exc:
            outcome = [exc] * len(jobs)
        self.stats.batch_sizes.append(len(jobs))
        self.stats.tokens += sum(len(j.tokens) for j in jobs)
        self._release(len(jobs))
        for (_, _, done), result in zip(batch, outcome, strict=True):
            done(result)
