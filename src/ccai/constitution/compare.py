"""How much two constitutions overlap in concepts, and how their tags differ.

The CCAI paper read both constitutions and judged about half of the public principles to overlap the standard
ones in concept. Here each principle is split into its ideas (:mod:`ccai.constitution.clauses`: the whole core
plus one clause per idea of a several-idea sentence, "the most helpful, honest, and harmless" -> "the most
honest" ...); two principles score the best cosine (bundled MiniLM) over their clause pairs, and a principle
of A is *covered* by B when it is matched one to one (Hungarian on that score) with a principle of B
at a score >= ``threshold``. Each matched pair records which clauses matched.
Reported: share of A covered by B and of B by A, the matched pairs, what is unique to each, and the tag
distribution side by side; ``to_html`` renders it all (every text escaped).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from ccai.constitution.clauses import principle_clauses
from ccai.constitution.dedup import Embedder, cosine_matrix
from ccai.constitution.model import TAGS, Constitution
from ccai.constitution.tags import predicate_text

DEFAULT_OVERLAP_SIMILARITY = 0.6


@dataclass
class Comparison:
    a: Constitution
    b: Constitution
    similarity: np.ndarray  # len(a) x len(b): best clause-pair cosine
    threshold: float
    a_clauses: list[list[str]] | None = None  # per principle of A: its clauses (first: the whole core)
    b_clauses: list[list[str]] | None = None
    best_clause: np.ndarray | None = None  # len(a) x len(b) x 2: indices of the clause pair behind the score

    @property
    def assignment(self) -> list[tuple[int, int]]:
        """One-to-one matching of A's and B's principles maximising total similarity (scipy's Hungarian
        solver): a hub principle of B matches only one of A, so near-synonyms do not inflate coverage."""
        cached = getattr(self, "_assignment", None)
        if cached is None:
            if not self.similarity.size:
                cached = []
            else:
                from scipy.optimize import linear_sum_assignment

                rows, cols = linear_sum_assignment(-self.similarity)
                cached = sorted((int(i), int(j)) for i, j in zip(rows, cols, strict=True))
            object.__setattr__(self, "_assignment", cached)
        return cached

    def _matched(self, threshold: float) -> list[tuple[int, int]]:
        return [(i, j) for i, j in self.assignment if self.similarity[i, j] >= threshold]

    @property
    def a_best(self) -> np.ndarray:
        return self.similarity.max(axis=1) if self.similarity.size else np.zeros(len(self.a))

    @property
    def b_best(self) -> np.ndarray:
        return self.similarity.max(axis=0) if self.similarity.size else np.zeros(len(self.b))

    @property
    def a_covered(self) -> float:
        """Share of A's principles matched (one-to-one, similarity >= threshold) with a principle of B."""
        return len(self._matched(self.threshold)) / len(self.a) if len(self.a) else 0.0

    @property
    def b_covered(self) -> float:
        return len(self._matched(self.threshold)) / len(self.b) if len(self.b) else 0.0

    def matched_pairs(self) -> list[tuple[str, str, float]]:
        """(A id, B id, similarity) for every one-to-one match at or above the threshold, in A's order."""
        return [
            (self.a.principles[i].id, self.b.principles[j].id, round(float(self.similarity[i, j]), 4))
            for i, j in self._matched(self.threshold)
        ]

    def matched_clauses(self) -> list[tuple[str, str, float, str, str]]:
        """The matched pairs with the clause of each principle that gave the score (A's, then B's)."""
        out = []
        for i, j in self._matched(self.threshold):
            ca, cb = (0, 0) if self.best_clause is None else (int(x) for x in self.best_clause[i, j])
            a_clause = self.a_clauses[i][ca] if self.a_clauses else self.a.principles[i].comparison
            b_clause = self.b_clauses[j][cb] if self.b_clauses else self.b.principles[j].comparison
            out.append(
                (
                    self.a.principles[i].id,
                    self.b.principles[j].id,
                    round(float(self.similarity[i, j]), 4),
                    a_clause,
                    b_clause,
                )
            )
        return out

    def unique_to_a(self) -> list[str]:
        matched = {i for i, _ in self._matched(self.threshold)}
        return [p.id for i, p in enumerate(self.a.principles) if i not in matched]

    def unique_to_b(self) -> list[str]:
        matched = {j for _, j in self._matched(self.threshold)}
        return [p.id for j, p in enumerate(self.b.principles) if j not in matched]

    def coverage_curve(
        self, thresholds: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7)
    ) -> dict[float, float]:
        """Share of A matched in B at several thresholds (how sensitive the overlap figure is)."""
        return {t: len(self._matched(t)) / len(self.a) if len(self.a) else 0.0 for t in thresholds}

    def tag_table(self) -> dict[str, tuple[float, float]]:
        sa, sb = self.a.tag_shares(), self.b.tag_shares()
        return {tag: (sa[tag], sb[tag]) for tag in TAGS}

    def summary(self) -> dict[str, object]:
        return {
            "a": self.a.name,
            "b": self.b.name,
            "a_principles": len(self.a),
            "b_principles": len(self.b),
            "threshold": self.threshold,
            "matching": (
                "one-to-one (scipy linear_sum_assignment) on the best clause-pair cosine, pairs >= threshold"
            ),
            "a_covered_by_b": round(self.a_covered, 4),
            "b_covered_by_a": round(self.b_covered, 4),
            "matched_pairs": len(self.matched_pairs()),
            "pairs": [
                {"a": x, "b": y, "similarity": sim, "a_clause": ca, "b_clause": cb}
                for x, y, sim, ca, cb in self.matched_clauses()
            ],
            "unique_to_a": len(self.unique_to_a()),
            "unique_to_b": len(self.unique_to_b()),
            "tags": {t: [round(x, 4), round(y, 4)] for t, (x, y) in self.tag_table().items()},
        }

    def to_html(self) -> str:
        e = html.escape
        a_text = {p.id: p.comparison for p in self.a.principles}
        b_text = {p.id: p.comparison for p in self.b.principles}
        pairs = "".join(
            f"<tr><td>{e(i)}</td><td>{e(a_text[i])}<br><small>clause: <mark>{e(ca)}</mark></small></td>"
            f"<td>{e(j)}</td><td>{e(b_text[j])}<br><small>clause: <mark>{e(cb)}</mark></small></td>"
            f"<td>{s:.3f}</td></tr>"
            for i, j, s, ca, cb in self.matched_clauses()
        )
        tags = "".join(
            f"<tr><td>{e(t)}</td><td>{x:.1%}</td><td>{y:.1%}</td></tr>"
            for t, (x, y) in self.tag_table().items()
        )

        def listing(ids: list[str], texts: dict[str, str]) -> str:
            return "<ul>" + "".join(f"<li><b>{e(i)}</b> {e(texts[i])}</li>" for i in ids) + "</ul>"

        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Constitution comparison</title><style>body{font-family:sans-serif;max-width:70rem;"
            "margin:auto}td{vertical-align:top;padding:2px 6px}"
            "table{border-collapse:collapse}tr:nth-child(even){background:#f4f4f8}</style></head><body>"
            f"<h1>{e(self.a.name)} vs {e(self.b.name)}</h1>"
            f"<p>Concept overlap, one-to-one matching at cosine similarity &ge; {self.threshold:.2f} "
            "(all-MiniLM-L6-v2, best pair of clauses): "
            f"<b>{self.a_covered:.1%}</b> of {e(self.a.name)} ({len(self.a)} principles) is covered by "
            f"{e(self.b.name)}; <b>{self.b_covered:.1%}</b> of {e(self.b.name)} ({len(self.b)}) by "
            f"{e(self.a.name)}.</p><h2>Tags</h2><table><tr><th>tag</th><th>{e(self.a.name)}</th>"
            f"<th>{e(self.b.name)}</th></tr>{tags}</table>"
            f"<h2>Matched pairs ({len(self.matched_pairs())})</h2><table><tr><th>A</th><th></th><th>B</th>"
            f"<th></th><th>sim</th></tr>{pairs}</table>"
            f"<h2>Only in {e(self.a.name)} ({len(self.unique_to_a())})</h2>"
            f"{listing(self.unique_to_a(), a_text)}"
            f"<h2>Only in {e(self.b.name)} ({len(self.unique_to_b())})</h2>"
            f"{listing(self.unique_to_b(), b_text)}"
            "</body></html>\n"
        )


def principle_vectors(constitution: Constitution, embedder: Embedder) -> np.ndarray:
    return embedder([predicate_text(p.comparison).strip() for p in constitution.principles])


def clause_similarity(
    a_clauses: list[list[str]], b_clauses: list[list[str]], embedder: Embedder
) -> tuple[np.ndarray, np.ndarray]:
    """(len(a) x len(b) best clause-pair cosine, len(a) x len(b) x 2 indices of that clause pair)."""
    flat_a = [c for cl in a_clauses for c in cl]
    flat_b = [c for cl in b_clauses for c in cl]
    sims = np.zeros((len(a_clauses), len(b_clauses)))
    where = np.zeros((len(a_clauses), len(b_clauses), 2), dtype=int)
    if not flat_a or not flat_b:
        return sims, where
    full = cosine_matrix(embedder(flat_a), embedder(flat_b))
    a_start = np.cumsum([0, *(len(cl) for cl in a_clauses)])
    b_start = np.cumsum([0, *(len(cl) for cl in b_clauses)])
    for i in range(len(a_clauses)):
        for j in range(len(b_clauses)):
            block = full[a_start[i] : a_start[i + 1], b_start[j] : b_start[j + 1]]
            ca, cb = np.unravel_index(int(np.argmax(block)), block.shape)
            sims[i, j], where[i, j] = block[ca, cb], (ca, cb)
    return sims, where


def compare(
    a: Constitution,
    b: Constitution,
    embedder: Embedder | None = None,
    threshold: float = DEFAULT_OVERLAP_SIMILARITY,
) -> Comparison:
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"overlap threshold must lie in (0, 1], got {threshold}")
    if embedder is None:
        from ccai.constitution.dedup import default_embedder

        embedder = default_embedder()
    a_clauses = [principle_clauses(p.comparison) for p in a.principles]
    b_clauses = [principle_clauses(p.comparison) for p in b.principles]
    sims, where = clause_similarity(a_clauses, b_clauses, embedder)
    return Comparison(a, b, sims, threshold, a_clauses, b_clauses, where)


def mark_inspired_by_standard(comparison: Comparison) -> Constitution:
    """A copy of A whose principles matched in B (the standard) carry the ``inspired-by-standard`` tag."""
    matched = {i for i, _, _ in comparison.matched_pairs()}
    result = comparison.a.model_copy(deep=True)
    for principle in result.principles:
        if principle.id in matched:
            principle.tags = [*principle.tags, "inspired-by-standard"]
    return result
