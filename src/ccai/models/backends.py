"""What the training and evaluation stages ask of a language model, and two ways to provide it.

The stages only need three things: sample replies to chat conversations (batched, seeded), score the
log-probability of given continuations (multiple-choice benchmarks, naive A/B checks), and read the normalised
probabilities of a few option tokens after an assistant prefix in one forward pass (the CAI feedback
question). :class:`TransformersBackend` runs a local Hugging Face folder in-process (CPU or GPU);
:class:`OpenAIBackend` talks to any OpenAI-compatible server (vLLM, TGI, llama.cpp server, Ollama) with
concurrent requests, which is how CAI data is generated at scale.
"""

from __future__ import annotations

import copy
import functools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Generation:
    """One reply and how it ended: ``finish_reason`` is ``"stop"`` (the model ended it), ``"length"`` (cut
    off at ``max_new_tokens``) or ``None`` (the backend does not say). Data-quality gates need the
    difference: a reply cut mid-sentence, trained on with an end-of-turn appended, teaches the model to
    stop mid-sentence."""

    text: str
    finish_reason: str | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


def generate_with_info(backend: Any, prompts: list[Messages], **kwargs: Any) -> list[Generation]:
    """``backend.generate_with_info`` where the backend has it, else its plain ``generate`` with the finish
    reason unknown (``None``): backends written against the older three-method protocol keep working."""
    method = getattr(backend, "generate_with_info", None)
    if method is not None:
        return list(method(prompts, **kwargs))
    return [Generation(text) for text in backend.generate(prompts, **kwargs)]


@runtime_checkable
class Backend(Protocol):
    """The model operations every stage uses."""

    def generate(
        self,
        prompts: list[Messages],
        *,
        max_new_tokens: int,
        temperature: float = 0.7,
        top_p: float = 0.9,
        seed: int = 0,
    ) -> list[str]:
        """One sampled assistant reply per conversation; temperature 0 is greedy; same seed, same replies."""
        ...

    def logprobs(self, contexts: list[str], continuations: list[str]) -> list[float]:
        """Sum of log p(continuation | context) over the continuation tokens (raw text, no chat template)."""
        ...

    def choice_probs(
        self, prompt_messages: Messages, options: list[str], assistant_prefix: str
    ) -> list[float]:
        """Probabilities of each option's first token right after ``assistant_prefix``, summing to 1."""
        ...


def validate_messages(prompts: Sequence[Any]) -> None:
    """Refuse malformed chat input with the index and field at fault (outside input reaches this)."""
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise ValueError("prompts: expected a list of conversations (lists of {'role', 'content'} dicts)")
    for i, conversation in enumerate(prompts):
        if isinstance(conversation, str | dict) or not isinstance(conversation, Sequence) or not conversation:
            raise ValueError(f"prompts[{i}]: expected a non-empty list of {{'role', 'content'}} messages")
        for j, message in enumerate(conversation):
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                raise ValueError(f"prompts[{i}][{j}]: expected a dict with string 'role' and 'content'")
            if message.get("role") not in {"system", "user", "assistant"}:
                raise ValueError(
                    f"prompts[{i}][{j}].role: expected 'system', 'user' or 'assistant', "
                    f"got {message.get('role')!r}"
                )


def shared_prefix(rows: Sequence[Sequence[int]]) -> list[int]:
    """The longest run of tokens every row starts with."""
    if not rows:
        return []
    first, limit = rows[0], min(len(r) for r in rows)
    n = 0
    while n < limit and all(r[n] == first[n] for r in rows):
        n += 1
    return list(first[:n])


def nucleus_filter(temperature: float, top_p: float, candidates: int = 128) -> Any:
    """Temperature then top-p (nucleus) filtering, as transformers' two warpers do it, without sorting
    the whole vocabulary at every step: the nucleus almost always lies within the ``candidates`` most
    likely tokens, so only those are sorted (rows where it does not fall back to a full sort). The same
    tokens survive, so sampling draws from the same distribution; on a CPU the full sort of 49k logits
    per row was 11-16 % of decoding time."""
    from transformers import LogitsProcessor, LogitsProcessorList

    class NucleusFilter(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            import torch

            scores = scores / temperature
            if top_p >= 1.0:
                return scores
            probs = scores.softmax(dim=-1)
            k = min(candidates, scores.shape[-1])
            top, index = probs.topk(k, dim=-1)
            above = top.cumsum(dim=-1) - top  # probability mass ranked above each candidate
            kept = torch.full_like(scores, -float("inf"))
            kept.scatter_(-1, index, torch.where(above < top_p, scores.gather(-1, index), -float("inf")))
            wide = top.sum(dim=-1) < top_p  # the nucleus reaches past the candidates: sort all of it
            if wide.any():
                ordered, order = probs[wide].sort(dim=-1, descending=True)
                mask = (ordered.cumsum(dim=-1) - ordered) < top_p
                rows = torch.full_like(scores[wide], -float("inf"))
                rows.scatter_(-1, order, torch.where(mask, scores[wide].gather(-1, order), -float("inf")))
                kept[wide] = rows
            return kept

    return LogitsProcessorList([NucleusFilter()])


def _expanded(cache: Any, rows: int, capacity: int = 0) -> Any:
    """A copy of a batch-of-one key/value cache repeated for ``rows`` rows; with ``capacity`` (the final
    length) its layers are preallocated, so generation writes each new position in place instead of
    concatenating the whole cache again at every step (10-20 % of CPU decoding time)."""
    copied = copy.deepcopy(cache)
    copied.batch_repeat_interleave(rows)
    if capacity:
        layers = []
        for layer in copied.layers:
            grown = _preallocated_layer_class()(capacity)
            grown.update(layer.keys, layer.values)
            layers.append(grown)
        copied.layers = layers
    return copied


@functools.cache
def _preallocated_layer_class() -> type:
    """Built on first use: transformers is imported lazily so that the CLI starts fast."""
    from transformers.cache_utils import DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        """A DynamicLayer writing into storage sized for the whole generation (grown by doubling)."""

        def __init__(self, capacity: int) -> None:
            super().__init__()
            self.capacity = capacity
            self.length = 0
            self._keys: Any = None
            self._values: Any = None

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            start, end = self.length, self.length + key_states.shape[-2]
            if self._keys is None or end > self._keys.shape[-2]:
                size = max(self.capacity, 2 * end)
                keys = key_states.new_empty((*key_states.shape[:-2], size, key_states.shape[-1]))
                values = value_states.new_empty((*value_states.shape[:-2], size, value_states.shape[-1]))
                if start:
                    keys[..., :start, :] = self._keys[..., :start, :]
                    values[..., :start, :] = self._values[..., :start, :]
                self._keys, self._values = keys, values
            self._keys[..., start:end, :] = key_states
            self._values[..., start:end, :] = value_states
            self.length = end
            self.keys, self.values = self._keys[..., :end, :], self._values[..., :end, :]
            return self.keys, self.values

    return PreallocatedLayer


def _check_pairs(contexts: Sequence[str], continuations: Sequence[str]) -> None:
    if len(contexts) != len(continuations):
        raise ValueError(f"logprobs: {len(contexts)} contexts but {len(continuations)} continuations")
    for i, (ctx, cont) in enumerate(zip(contexts, continuations, strict=True)):
        if not isinstance(ctx, str) or not isinstance(cont, str):
            raise ValueError(f"logprobs: item {i}: context and continuation must be strings")
        if not cont:
            raise ValueError(f"logprobs: item {i}: empty continuation (nothing to score)")


def _check_options(options: Sequence[str]) -> None:
    if len(options) < 2 or any(not isinstance(o, str) or not o for o in options):
        raise ValueError(f"choice_probs: expected at least two non-empty option strings, got {options!r}")


class _RepliesFromInfo:
    """``generate`` (replies only) from the backend's ``generate_with_info`` (replies with finish reasons)."""

    def generate(
        self,
        prompts: list[Messages],
        *,
        max_new_tokens: int,
        temperature: float = 0.7,
        top_p: float = 0.9,
        seed: int = 0,
    ) -> list[str]:
        infos = self.generate_with_info(  # type: ignore[attr-defined]
            prompts, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
        )
        return [g.text for g in infos]


class TransformersBackend(_RepliesFromInfo):
    """A local Hugging Face causal LM run in-process.

    Prompts are sorted by length and batched (``batch_size``) so padding stays small; each batch is seeded
    with ``seed + batch index`` so the same inputs and seed give the same replies.
    """

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "cpu",
        batch_size: int = 16,
        dtype: Any = None,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        from ccai.models.prepare import load_causal_lm, load_tokenizer

        self.model_dir = Path(model_dir)
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(self.model_dir)
        if model is None:
            model = load_causal_lm(self.model_dir, dtype=dtype, device=device)
        self.model = model
        self.on_batch: Callable[[int], None] | None = None
        self.tokens_generated = 0
        #: ``choice_probs_batch`` takes one assistant prefix per conversation as well as a shared one.
        self.prefix_per_prompt = True
        #: Inputs of one call that start with the same tokens (chat template, few-shot demos, the A/B
        #: question's preamble) share one key/value cache of that prefix when it is at least this long;
        #: 0 turns it off.
        self.min_shared_prefix = 16

    # -- text helpers -------------------------------------------------------------------------------
    def render(self, messages: Messages, assistant_prefix: str = "") -> str:
        """The model's chat template with the assistant turn opened (and ``assistant_prefix`` appended)."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text + assistant_prefix

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        return [order[k : k + self.batch_size] for k in range(0, len(order), self.batch_size)]

    def _left_padded(self, rows: list[list[int]], prefix: Sequence[int] = ()) -> tuple[Any, Any, Any]:
        """Ids, attention mask and positions of ``prefix + row`` for each row, rows padded on the left of
        the row (so between a shared prefix and the row: the padding is masked, positions skip it)."""
        import torch

        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), len(prefix) + width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), len(prefix) + width), dtype=torch.long)
        if prefix:
            ids[:, : len(prefix)] = torch.tensor(list(prefix), dtype=torch.long)
            mask[:, : len(prefix)] = 1
        for k, row in enumerate(rows):
            ids[k, ids.shape[1] - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[k, ids.shape[1] - len(row) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.model.device
        return ids.to(dev), mask.to(dev), positions.to(dev)

    # -- protocol -----------------------------------------------------------------------------------
    def generate_with_info(
        self,
        prompts: list[Messages],
        *,
        max_new_tokens: int,
        temperature: float = 0.7,
        top_p: float = 0.9,
        seed: int = 0,
    ) -> list[Generation]:
        """:meth:`generate` with each reply's finish reason (``stop`` at end-of-sequence, else ``length``)."""
        validate_messages(prompts)
        texts = [self.render(list(p)) for p in prompts]
        return self.generate_texts_with_info(texts, max_new_tokens, temperature, top_p, seed)

    def generate_texts(
        self,
        texts: list[str],
        *,
        max_new_tokens: int,
        temperature: float = 0.7,
        top_p: float = 0.9,
        seed: int = 0,
    ) -> list[str]:
        """Continue already-rendered prompt texts (the chat template applied by the caller)."""
        return [
            g.text for g in self.generate_texts_with_info(texts, max_new_tokens, temperature, top_p, seed)
        ]

    def generate_texts_with_info(
        self, texts: list[str], max_new_tokens: int, temperature: float, top_p: float, seed: int
    ) -> list[Generation]:
        """:meth:`generate_texts` with each reply's finish reason."""
        import torch

        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: expected >= 1, got {max_new_tokens}")
        encoded = [self._encode(t) for t in texts]
        outputs: list[Generation] = [Generation("")] * len(texts)
        eos = self.tokenizer.eos_token_id
        prefix, cache = self._shared_prefix_cache(encoded)
        for index, batch in enumerate(self._batches([len(e) for e in encoded])):
            ids, mask, _ = self._left_padded([encoded[i][len(prefix) :] for i in batch], prefix=prefix)
            torch.manual_seed(seed + index)
            sample = temperature > 0
            kwargs: dict[str, Any] = {
                "do_sample": sample,
                "max_new_tokens": max_new_tokens,
                "pad_token_id": self.tokenizer.pad_token_id,
                "eos_token_id": eos,
            }
            if sample:  # temperature and top-p done by nucleus_filter (HF's warpers sort the vocabulary)
                kwargs.update(
                    temperature=1.0, top_p=1.0, top_k=0, logits_processor=nucleus_filter(temperature, top_p)
                )
            if cache is not None:
                kwargs["cache"] = _expanded(cache, len(batch), capacity=ids.shape[1] + max_new_tokens)
            with torch.no_grad():
                out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            new = out[:, ids.shape[1] :]
            for row, i in zip(new.tolist(), batch, strict=True):
                ended = eos in row
                if ended:
                    row = row[: row.index(eos)]
                self.tokens_generated += len(row)
                text = self.tokenizer.decode(row, skip_special_tokens=True).strip()
                outputs[i] = Generation(text, "stop" if ended else "length")
            if self.on_batch is not None:
                self.on_batch(len(batch))
        return outputs

    def _shared_prefix_cache(self, encoded: list[list[int]], own: int = 1) -> tuple[list[int], Any]:
        """The tokens all rows of one call start with (each row keeping ``own`` tokens of its own) and their
        key/value cache, computed once (batch of one); ``([], None)`` when shorter than the minimum."""
        import torch
        from transformers import DynamicCache

        prefix = shared_prefix(encoded)[: max(0, min((len(e) for e in encoded), default=0) - own)]
        if not self.min_shared_prefix or len(prefix) < self.min_shared_prefix:
            return [], None
        cache = DynamicCache(config=self.model.config)
        with torch.no_grad():
            self.model(input_ids=torch.tensor([prefix], device=self.model.device), cache=cache)
        return prefix, cache

    def _last_logits(self, rows: list[list[int]], prefix: list[int], cache: Any, keep: int) -> Any:
        """Float logits at the last ``keep`` positions of each row (one batch; rows right-aligned), reusing
        the cached ``prefix`` when there is one."""
        import torch

        ids, mask, positions = self._left_padded([r[len(prefix) :] for r in rows], prefix=prefix)
        extra: dict[str, Any] = {}
        if cache is not None:
            extra["cache"] = _expanded(cache, len(rows))
            ids, positions = ids[:, len(prefix) :], positions[:, len(prefix) :]
        with torch.no_grad():
            out = self.model(
                input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep, **extra
            )
        return out.logits.float()

    def token_logprobs(self, text: str) -> tuple[list[str], list[int], list[float | None]]:
        """Per-token view of ``text``: token strings, char offsets, log p(token | prefix) (first: None)."""
        import torch

        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        offsets = [int(a) for a, _ in enc["offset_mapping"]]
        tokens = [text[a:b] for a, b in enc["offset_mapping"]]
        if not ids:
            return [], [], []
        with torch.no_grad():
            logits = self.model(input_ids=torch.tensor([ids], device=self.model.device)).logits[0].float()
        targets = torch.tensor(ids[1:], device=logits.device)[:, None]
        logp = torch.log_softmax(logits[:-1], dim=-1).gather(-1, targets)
        return tokens, offsets, [None, *[float(x) for x in logp[:, 0]]]

    def next_token_logprobs(self, text: str, top: int) -> list[tuple[str, float]]:
        """The ``top`` most likely next tokens after ``text`` (decoded) with their log-probabilities."""
        import torch

        ids = torch.tensor([self._encode(text)], device=self.model.device)
        with torch.no_grad():
            logits = self.model(input_ids=ids, logits_to_keep=1).logits[0, -1].float()
        values, indices = torch.log_softmax(logits, dim=-1).topk(top)
        return [(self.tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, indices, strict=True)]

    def next_token_logprobs_batch(self, texts: list[str], top: int) -> list[list[tuple[str, float]]]:
        """:meth:`next_token_logprobs` for many texts in batched forward passes (shared prefix cached)."""
        import torch

        encoded = [self._encode(t) for t in texts]
        results: list[list[tuple[str, float]]] = [[] for _ in texts]
        prefix, cache = self._shared_prefix_cache(encoded)
        for batch in self._batches([len(e) for e in encoded]):
            logits = self._last_logits([encoded[i] for i in batch], prefix, cache, keep=1)[:, -1]
            values, indices = torch.log_softmax(logits, dim=-1).topk(top, dim=-1)
            for k, i in enumerate(batch):
                results[i] = [
                    (self.tokenizer.decode([int(t)]), float(v))
                    for v, t in zip(values[k], indices[k], strict=True)
                ]
        return results

    def _split(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of context and continuation; a trailing space moves to the continuation, as usual."""
        stripped = context.rstrip(" ")
        continuation = context[len(stripped) :] + continuation
        whole = self._encode(stripped + continuation)
        ctx = self._encode(stripped) if stripped else []
        if whole[: len(ctx)] != ctx:  # a merge across the boundary: encode the two parts apart
            return ctx, self._encode(continuation)
        if not ctx:
            bos = self.tokenizer.bos_token_id
            bos = self.tokenizer.eos_token_id if bos is None else bos
            return [bos], whole
        return ctx, whole[len(ctx) :]

    def logprobs(self, contexts: list[str], continuations: list[str]) -> list[float]:
        import torch

        _check_pairs(contexts, continuations)
        pairs = [self._split(c, x) for c, x in zip(contexts, continuations, strict=True)]
        results = [0.0] * len(pairs)
        whole = [c + x for c, x in pairs]  # a shared prefix stays inside every context (few-shot examples)
        prefix, cache = self._shared_prefix_cache(whole, own=1 + max((len(x) for _, x in pairs), default=0))
        for batch in self._batches([len(w) for w in whole]):
            keep = max(len(pairs[i][1]) for i in batch) + 1
            logits = self._last_logits([whole[i] for i in batch], prefix, cache, keep)
            logp = torch.log_softmax(logits[:, :-1], dim=-1)  # position t predicts token t+1
            for k, i in enumerate(batch):
                cont = pairs[i][1]
                targets = torch.tensor(cont, device=logp.device)
                picked = logp[k, logp.shape[1] - len(cont) :].gather(-1, targets[:, None])
                results[i] = float(picked.sum())
        return results

    def option_token_ids(self, prefix_text: str, options: Sequence[str]) -> list[int]:
        """The first token each option would add right after ``prefix_text``."""
        base = self._encode(prefix_text)
        ids = []
        for option in options:
            whole = self._encode(prefix_text + option)
            ids.append(
                whole[len(base)]
                if whole[: len(base)] == base and len(whole) > len(base)
                else self._encode(option)[0]
            )
        if len(set(ids)) != len(ids):
            raise ValueError(
                f"choice_probs: options {list(options)!r} start with the same token; use distinct ones"
            )
        return ids

    def choice_probs(
        self, prompt_messages: Messages, options: list[str], assistant_prefix: str
    ) -> list[float]:
        return self.choice_probs_batch([prompt_messages], options, assistant_prefix)[0]

    def choice_probs_batch(
        self, prompts: list[Messages], options: list[str], assistant_prefix: str | Sequence[str]
    ) -> list[list[float]]:
        """:meth:`choice_probs` for many conversations; still one forward pass per conversation batch.
        ``assistant_prefix`` may be one string or one per conversation (chain-of-thought labels)."""
        import torch

        validate_messages(prompts)
        _check_options(options)
        prefixes = (
            [assistant_prefix] * len(prompts) if isinstance(assistant_prefix, str) else assistant_prefix
        )
        if len(prefixes) != len(prompts):
            raise ValueError(f"choice_probs: {len(prompts)} prompts but {len(prefixes)} assistant prefixes")
        texts = [self.render(list(p), pre) for p, pre in zip(prompts, prefixes, strict=True)]
        row_ids = [self.option_token_ids(t, options) for t in texts] if len(set(prefixes)) > 1 else None
        option_ids = self.option_token_ids(texts[0], options) if texts else []
        encoded = [self._encode(t) for t in texts]
        results: list[list[float]] = [[] for _ in texts]
        self.last_option_mass: list[float] = [0.0] * len(texts)
        prefix, cache = self._shared_prefix_cache(encoded)
        for batch in self._batches([len(e) for e in encoded]):
            logits = self._last_logits([encoded[i] for i in batch], prefix, cache, keep=1)[:, -1]
            ids = [row_ids[i] if row_ids else option_ids for i in batch]
            index = torch.tensor(ids, device=logits.device)
            full = torch.softmax(logits, dim=-1).gather(-1, index)
            probs = torch.softmax(logits.gather(-1, index), dim=-1)
            for k, i in enumerate(batch):
                results[i] = [float(p) for p in probs[k]]
                self.last_option_mass[i] = float(full[k].sum())
        return results


class OpenAIBackend(_RepliesFromInfo):
    """Any OpenAI-compatible HTTP server (vLLM, TGI, llama.cpp server, Ollama), requests sent concurrently.

    - ``generate`` uses ``/v1/chat/completions`` (one request per conversation, seed = ``seed + index``).
    - ``logprobs`` uses ``/v1/completions`` with ``echo`` and ``logprobs`` (vLLM and the project's
      ``ccai.models.serve`` support it; the hosted OpenAI API does not).
    - ``choice_probs`` uses ``/v1/chat/completions`` with the assistant prefix as a final assistant message,
      ``continue_final_message`` (vLLM's extension), one generated token and ``top_logprobs``; options outside
      the returned top tokens count as probability 0.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        top_logprobs: int = 20,
    ) -> None:
        import httpx

        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url: expected an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.model = model
        self.concurrency = max(1, int(concurrency))
        self.top_logprobs = top_logprobs
        headers = {"Authorization": f"Bearer {api_key or os.environ.get('OPENAI_API_KEY', 'none')}"}
        self._client = httpx.Client(headers=headers, timeout=timeout)
        self.on_batch: Callable[[int], None] | None = None
        self.tokens_generated = 0
        #: ``choice_probs_batch`` takes one assistant prefix per conversation as well as a shared one.
        self.prefix_per_prompt = True

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        import httpx

        url = f"{self.base_url}{path}"
        try:
            response = self._client.post(url, json={"model": self.model, **payload})
        except httpx.HTTPError as exc:
            raise ConnectionError(f"{url}: request failed ({exc}); is the server running?") from exc
        if response.status_code != 200:
            raise ConnectionError(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    def _map(self, fn: Callable[[int], Any], n: int) -> list[Any]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(fn, range(n)))

    def generate_with_info(
        self,
        prompts: list[Messages],
        *,
        max_new_tokens: int,
        temperature: float = 0.7,
        top_p: float = 0.9,
        seed: int = 0,
    ) -> list[Generation]:
        """:meth:`generate` with the server's ``finish_reason`` per reply (``None`` where it sends none)."""
        validate_messages(prompts)

        def one(i: int) -> Generation:
            body = self._post(
                "/chat/completions",
                {
                    "messages": list(prompts[i]),
                    "max_tokens": max_new_tokens,
                    "temperature": temperature,
                    "top_p": top_p if temperature > 0 else 1.0,
                    "seed": seed + i,
                    "n": 1,
                },
            )
            usage = body.get("usage") or {}
            self.tokens_generated += int(usage.get("completion_tokens", 0))
            if self.on_batch is not None:
                self.on_batch(1)
            choice = body["choices"][0]
            reason = choice.get("finish_reason")
            return Generation(
                (choice["message"].get("content") or "").strip(), reason if isinstance(reason, str) else None
            )

        return self._map(one, len(prompts))

    def logprobs(self, contexts: list[str], continuations: list[str]) -> list[float]:
        _check_pairs(contexts, continuations)

        def one(i: int) -> float:
            text = contexts[i] + continuations[i]
            body = self._post(
                "/completions",
                {"prompt": text, "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0.0},
            )
            lp = body["choices"][0]["logprobs"]
            start = len(contexts[i].rstrip(" "))
            total = 0.0
            for offset, value in zip(lp["text_offset"], lp["token_logprobs"], strict=False):
                if start <= offset < len(text):
                    if value is None:
                        raise ValueError(f"logprobs: item {i}: no logprob from the server for a token")
                    total += float(value)
            return total

        return self._map(one, len(contexts))

    def choice_probs_batch(
        self, prompts: list[Messages], options: list[str], assistant_prefix: str | Sequence[str]
    ) -> list[list[float]]:
        """:meth:`choice_probs` for many conversations, up to ``concurrency`` requests in flight at once
        (a server that batches, such as vLLM, then scores them together). ``assistant_prefix`` may be one
        string or one per conversation (chain-of-thought labels each end in their own reasoning)."""
        validate_messages(prompts)
        _check_options(options)
        prefixes = (
            [assistant_prefix] * len(prompts) if isinstance(assistant_prefix, str) else assistant_prefix
        )
        if len(prefixes) != len(prompts):
            raise ValueError(f"choice_probs: {len(prompts)} prompts but {len(prefixes)} assistant prefixes")
        return self._map(lambda i: self._choice_probs(prompts[i], options, prefixes[i]), len(prompts))

    def choice_probs(
        self, prompt_messages: Messages, options: list[str], assistant_prefix: str
    ) -> list[float]:
        validate_messages([prompt_messages])
        _check_options(options)
        return self._choice_probs(prompt_messages, options, assistant_prefix)

    def _choice_probs(
        self, prompt_messages: Messages, options: list[str], assistant_prefix: str
    ) -> list[float]:
        body = self._post(
            "/chat/completions",
            {
                "messages": [*prompt_messages, {"role": "assistant", "content": assistant_prefix}],
                "continue_final_message": True,
                "add_generation_prompt": False,
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": True,
                "top_logprobs": self.top_logprobs,
            },
        )
        content = body["choices"][0].get("logprobs", {}).get("content") or []
        if not content:
            raise ValueError(f"{self.base_url}: no logprobs in the reply (server lacks top_logprobs)")
        top = {item["token"]: item["logprob"] for item in content[0]["top_logprobs"]}
        weights = []
        for option in options:  # the exact token, as the local backend scores it; else its spaced variants
            if option in top:
                weights.append(math.exp(top[option]))
            else:
                weights.append(sum(math.exp(lp) for tok, lp in top.items() if tok.strip() == option.strip()))
        total = sum(weights)
        if total == 0:
            raise ValueError(f"choice_probs: none of the options {options!r} is in the server's top tokens")
        return [w / total for w in weights]


def make_backend(
    spec: str, *, device: str = "cpu", batch_size: int = 16, concurrency: int = 8, api_key: str | None = None
) -> Backend:
    """``'smollm2'``, a local model folder, or ``'openai:<base_url>#<model>'`` for an HTTP server."""
    if spec.startswith("openai:"):
        url, _, model = spec[len("openai:") :].partition("#")
        if not model:
            raise ValueError(f"backend {spec!r}: expected openai:<base_url>#<model name>")
        return OpenAIBackend(url, model, api_key=api_key, concurrency=concurrency)
    from ccai.models.prepare import resolve_model

    return TransformersBackend(resolve_model(spec), device=device, batch_size=batch_size)
