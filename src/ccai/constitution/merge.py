"""Avenue 1, global: N country constitutions + a base set -> one constitution, with support and conflicts.

Principles from all inputs are pooled and clustered on their embeddings (complete linkage, as for statements).
A cluster becomes one principle, worded like its base-set member when it has one (else the first member), with
every member's sources, and the countries that support it (from each input's ``metadata.country``).

Conflicts are *reported*, never merged away, and only with evidence on all three counts:

* **same topic**: the two principles share a topic tag (privacy, honesty, ...);
* **opposite direction**: one asks for what the other asks to avoid: their polarity differs and their texts
  are near-identical (similarity >= ``contradiction_similarity``) once direction words are removed
  (most/least/not/never/...);
* **support on both sides**: each principle comes from a different input and cites at least one source
  (a statement or an article), so each side has someone behind it.

Each conflict carries its evidence (both texts, the shared topics, the similarity, the sources on each side),
and the global HTML lists them. An earlier rule, "collective good vs individual rights" by keyword tags and a
loose similarity (0.4), reported tensions such as freedom of expression vs the common good as conflicts; all
three it found on the bundled texts were spurious, so it is gone. Members of one cluster that conflict are
split into separate principles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ccai.constitution.dedup import Embedder, cluster, cosine_matrix
from ccai.constitution.model import Constitution, Principle, _source_line
from ccai.constitution.tags import predicate_text

DEFAULT_MERGE_SIMILARITY = 0.7
_DIRECTION = re.compile(
    r"\b(most|least|likely to|is least likely to|not|never|no|avoid(s)?|does|do|more|less|any)\b",
    re.IGNORECASE,
)


@dataclass
class Conflict:
    a: str  # principle ids in the merged constitution
    b: str
    countries_a: list[str]
    countries_b: list[str]
    reason: str
    similarity: float  # of the texts without direction words
    topics: list[str] = field(default_factory=list)  # the topic tags both share
    text_a: str = ""
    text_b: str = ""
    sources_a: list[str] = field(default_factory=list)  # one line per source (statement or article)
    sources_b: list[str] = field(default_factory=list)


@dataclass
class MergeResult:
    constitution: Constitution
    conflicts: list[Conflict]
    support: dict[str, list[str]] = field(default_factory=dict)  # principle id -> supporting countries
    countries: list[str] = field(default_factory=list)

    def support_counts(self) -> dict[int, int]:
        """How many principles are supported by k countries, for each k."""
        counts: dict[int, int] = {}
        for countries in self.support.values():
            counts[len(countries)] = counts.get(len(countries), 0) + 1
        return dict(sorted(counts.items()))


def _polarity(p: Principle) -> str:
    rule = p.metadata.get("rewrite", {}) if isinstance(p.metadata.get("rewrite"), dict) else {}
    if rule.get("polarity") in ("positive", "negative"):
        return rule["polarity"]
    return "negative" if "avoids-undesired" in p.tags else "positive"


def _shared_topics(p: Principle, q: Principle) -> list[str]:
    from ccai.constitution.model import TOPIC_TAGS

    return sorted(set(p.tags) & set(q.tags) & set(TOPIC_TAGS))


def _conflict_reason(p: Principle, q: Principle, neutral_sim: float, contradiction: float) -> str | None:
    """A reason when the pair conflicts with evidence (same topic, opposite direction, sources on both
    sides); None otherwise."""
    if _polarity(p) == _polarity(q) or neutral_sim < contradiction:
        return None
    if not _shared_topics(p, q) or not p.sources or not q.sources:
        return None
    return "opposite direction on the same topic: one asks for what the other asks to avoid"


def merge_constitutions(
    constitutions: list[Constitution],
    base: Constitution | None = None,
    embedder: Embedder | None = None,
    similarity: float = DEFAULT_MERGE_SIMILARITY,
    contradiction_similarity: float = 0.85,
    name: str = "global",
) -> MergeResult:
    """Merge country constitutions (``metadata.country`` names each; else its name) over an optional base."""
    if not constitutions:
        raise ValueError("merge needs at least one country constitution")
    if embedder is None:
        from ccai.constitution.dedup import default_embedder

        embedder = default_embedder()
    inputs = ([base] if base is not None else []) + list(constitutions)
    country_of = [str(c.metadata.get("country") or c.name) for c in inputs]
    is_base = [base is not None and i == 0 for i in range(len(inputs))]
    pool: list[tuple[int, Principle]] = [(k, p) for k, c in enumerate(inputs) for p in c.principles]
    if not pool:
        raise ValueError("the constitutions to merge have no principles")
    texts = [predicate_text(p.comparison).strip() for _, p in pool]
    vectors = embedder(texts)
    neutral = embedder([_DIRECTION.sub(" ", t) for t in texts])
    neutral_sims = cosine_matrix(neutral, neutral)

    conflicts_idx: list[tuple[int, int, str]] = []
    for i in range(len(pool)):
        for j in range(i + 1, len(pool)):
            if pool[i][0] == pool[j][0]:
                continue  # conflicts are between inputs, not inside one
            reason = _conflict_reason(
                pool[i][1], pool[j][1], float(neutral_sims[i, j]), contradiction_similarity
            )
            if reason:
                conflicts_idx.append((i, j, reason))
    conflicting = {(i, j) for i, j, _ in conflicts_idx} | {(j, i) for i, j, _ in conflicts_idx}

    groups: list[list[int]] = []
    for group in cluster(vectors, similarity):
        while group:  # split out members that conflict with the group's first member
            head = group[0]
            keep = [m for m in group if (head, m) not in conflicting]
            groups.append(keep)
            group = [m for m in group if m not in keep]

    principles: list[Principle] = []
    support: dict[str, list[str]] = {}
    where: dict[int, str] = {}
    for group in groups:
        rep_index = next((m for m in group if is_base[pool[m][0]]), group[0])
        k, rep = pool[rep_index]
        members = [rep_index] + [m for m in group if m != rep_index]
        sources = []
        for m in members:
            for source in pool[m][1].sources:
                if source.country is None and not is_base[pool[m][0]]:
                    source = source.model_copy(update={"country": country_of[pool[m][0]]})
                if source not in sources:
                    sources.append(source)
        countries = sorted({country_of[pool[m][0]] for m in members if not is_base[pool[m][0]]})
        pid = re.sub(r"[^A-Za-z0-9_.:\-]", "-", f"{country_of[k]}.{rep.id}")[:120]
        tags = sorted(
            {t for m in members for t in pool[m][1].tags} - {"promotes-desired", "avoids-undesired"}
        )
        tags.append("avoids-undesired" if _polarity(rep) == "negative" else "promotes-desired")
        principles.append(
            rep.model_copy(
                update={
                    "id": pid,
                    "sources": sources,
                    "tags": sorted(set(tags)),
                    # the best-supported member's consensus weight (inputs built with --consensus geomean)
                    "weight": max(
                        (pool[m][1].weight for m in members if pool[m][1].weight is not None), default=None
                    ),
                    "metadata": {
                        **rep.metadata,
                        "support": countries,
                        "in_base": any(is_base[pool[m][0]] for m in members),
                        "merged_from": [f"{country_of[pool[m][0]]}:{pool[m][1].id}" for m in members],
                    },
                }
            )
        )
        support[pid] = countries
        for m in members:
            where[m] = pid
    conflicts = [
        Conflict(
            a=where[i],
            b=where[j],
            countries_a=support[where[i]] or [country_of[pool[i][0]]],
            countries_b=support[where[j]] or [country_of[pool[j][0]]],
            reason=reason,
            similarity=round(float(neutral_sims[i, j]), 4),
            topics=_shared_topics(pool[i][1], pool[j][1]),
            text_a=pool[i][1].comparison,
            text_b=pool[j][1].comparison,
            sources_a=[f"{country_of[pool[i][0]]}: {_source_line(s)}" for s in pool[i][1].sources],
            sources_b=[f"{country_of[pool[j][0]]}: {_source_line(s)}" for s in pool[j][1].sources],
        )
        for i, j, reason in conflicts_idx
        if where[i] != where[j]
    ]
    seen_pairs: set[tuple[str, str, str]] = set()
    unique_conflicts = []
    for c in conflicts:
        key = (min(c.a, c.b), max(c.a, c.b), c.reason)
        if key not in seen_pairs:
            seen_pairs.add(key)
            unique_conflicts.append(c)
    countries = [country_of[i] for i in range(len(inputs)) if not is_base[i]]
    merged = Constitution(
        name=name,
        description=(
            f"Global constitution from {', '.join(countries)}"
            + (f" over the base set {base.name}" if base is not None else "")
            + f": {len(principles)} principles, {len(unique_conflicts)} conflicts reported."
        ),
        principles=principles,
        metadata={
            "countries": countries,
            "base": base.name if base is not None else None,
            "inputs": {country_of[i]: inputs[i].content_hash for i in range(len(inputs))},
            "merge_similarity": similarity,
            "conflicts": [c.__dict__ for c in unique_conflicts],
        },
    )
    return MergeResult(merged, unique_conflicts, support, countries)
