"""Data-quality gates for SL-CAI targets: what a fine-tuning target must not be.

Why: small models often fail the critique -> revision step in ways that look like data. In a demo run 9 of
20 SFT targets ended mid-sentence (the chat template then appends end-of-turn, so SFT teaches the model to
stop mid-sentence) and 6 of 16 revisions were the critique copied word for word. Each check returns the
name of the failure (counted in ``state.json``, the run summary and the model card) or ``None``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from difflib import SequenceMatcher

from ccai.training.config import QualityConfig

#: Check names, in the order they are tried (the first failure names the rejection).
REASONS = ("empty", "truncated", "copies_critique", "copies_request", "repeated")
_WORD = re.compile(r"\w+")


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def similarity(a: str, b: str) -> float:
    """0..1, how much of the two texts is the same (difflib's ratio on lower-cased, space-normalised text);
    a text that holds the other whole (a copy with a short label around it) also counts as similar."""
    a, b = _normal(a), _normal(b)
    if not a or not b:
        return 0.0
    short, long = sorted((a, b), key=len)
    if len(short) >= 20 and short in long and len(short) >= 0.6 * len(long):
        return 1.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def repeated_share(text: str, n: int = 3) -> float:
    """Share of word n-grams that repeat an earlier one (0 for short texts): degenerate loops score high."""
    words = _WORD.findall(text.lower())
    if len(words) < 4 * n:
        return 0.0
    grams = [tuple(words[k : k + n]) for k in range(len(words) - n + 1)]
    counts = Counter(grams)
    return sum(c - 1 for c in counts.values()) / len(grams)


def check_text(text: str, truncated: bool, config: QualityConfig) -> str | None:
    """Gates every target shares: empty, cut off at the token limit, or a degenerate repetition."""
    if not text.strip():
        return "empty"
    if truncated and config.drop_truncated:
        return "truncated"
    if repeated_share(text) > config.max_repeated:
        return "repeated"
    return None


#: A sentence end: . ! ? or an ellipsis, maybe closed by a quote or bracket, then space or the end.
_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*(?=\s|$)")
#: "2." at the end: a list item's number, which opens an item rather than ending a sentence.
_ITEM_NUMBER = re.compile(r"(?:^|\s)\d+\.$")


def trim_to_sentence(text: str, min_share: float) -> str | None:
    """A reply cut off at the token limit, cut back to the end of its last complete sentence; ``None`` when
    no sentence ends in it or the cut would keep less than ``min_share`` of its characters.

    Why: a small generation budget cuts most replies of a chatty model off mid-sentence; dropping them all
    leaves few targets, training on them teaches stopping mid-sentence, and a larger budget costs every
    generation call. The complete sentences before the cut are a target that ends where a sentence ends.
    """
    text = text.rstrip()
    for match in reversed(list(_SENTENCE_END.finditer(text))):
        cut = text[: match.end()]
        if len(cut) < min_share * len(text):
            return None
        if not _ITEM_NUMBER.search(cut):
            return cut
    return None


def settle(text: str, truncated: bool, config: QualityConfig) -> tuple[str, bool, bool]:
    """(target text, still truncated, trimmed): with ``trim_truncated`` a cut-off target is trimmed back to
    its last complete sentence where that keeps enough of it; otherwise it stays as it is."""
    if truncated and config.drop_truncated and config.trim_truncated:
        cut = trim_to_sentence(text, config.min_trimmed_share)
        if cut is not None:
            return cut, False, True
    return text, truncated, False


def check_revision(
    revision: str,
    truncated: bool,
    *,
    critique: str,
    requests: Iterable[str],
    config: QualityConfig,
) -> str | None:
    """A revision must be a new answer: not the critique copied, not a request (the user's prompt, the
    critique or revision instruction) echoed back, and it must pass :func:`check_text`."""
    basic = check_text(revision, truncated, config)
    if basic in ("empty", "truncated"):
        return basic
    if critique.strip() and similarity(revision, critique) >= config.copy_similarity:
        return "copies_critique"
    if any(r.strip() and similarity(revision, r) >= config.copy_similarity for r in requests):
        return "copies_request"
    return basic


def count(reasons: Iterable[str | None]) -> dict[str, int]:
    """{reason: how many} for every reason in :data:`REASONS` (zeros included, so reports line up)."""
    found = Counter(r for r in reasons if r)
    return {reason: found.get(reason, 0) for reason in (*REASONS, *sorted(set(found) - set(REASONS)))}
