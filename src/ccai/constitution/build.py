"""The stage's entry function: statements table -> public constitution, keeping every intermediate.

``build_constitution`` selects statements by GAC, proposes (or applies reviewed) merges of near-duplicates,
rewrites each group's kept statement into principle form, tags it, and returns a :class:`BuildResult` with the
selection, the merges and the constitution, so each step can be audited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ccai.constitution.dedup import (
    DEFAULT_MERGE_SIMILARITY,
    Embedder,
    Merge,
    propose_merges,
    read_review,
    write_review,
)
from ccai.constitution.model import Constitution, Principle
from ccai.constitution.rewrite import (
    LMRewriter,
    Rewrite,
    clean,
    core_text,
    rewrite_all_with_lm,
    rewrite_statement,
)
from ccai.constitution.select import Selection, select_statements, statement_source
from ccai.constitution.tags import assign_tags


@dataclass
class BuildResult:
    """Everything a build did: the statements, the merges (reviewed by a person or not), the result."""

    constitution: Constitution
    selection: Selection
    merges: list[Merge]
    reviewed: bool
    review_path: Path | None = None
    rewrites: dict[str, Rewrite] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        accepted = [m for m in self.merges if m.decision == "accept"]
        return {
            "threshold": round(self.selection.threshold, 6),
            "statements_considered": self.selection.considered,
            "statements_selected": len(self.selection.statements),
            "merges_proposed" if not self.reviewed else "merges_in_review": len(self.merges),
            "merges_applied": len(accepted),
            "statements_merged": sum(len(m.members) for m in accepted),
            "principles": len(self.constitution),
            "reviewed": self.reviewed,
            "rewrite_rules": pd.Series([p.metadata["rewrite"]["rule"] for p in self.constitution.principles])
            .value_counts()
            .to_dict(),
        }


def build_constitution(
    statements: pd.DataFrame,
    *,
    threshold: float | None = None,
    count: int | None = None,
    exclude: Iterable[str] = (),
    embedder: Embedder | None = None,
    merge_similarity: float = DEFAULT_MERGE_SIMILARITY,
    review: Path | str | None = None,
    name: str = "public",
    version: str = "1.0.0",
    consultation: str | None = None,
    country: str | None = None,
    lm: LMRewriter | None = None,
    lm_wording: Callable[[list[str]], str] | None = None,
    lm_name: str | None = None,
) -> BuildResult:
    """Build a constitution from a statements table (see :func:`ccai.constitution.select.read_statements`).

    ``review``: a review YAML. If it exists, its decisions are applied; if not, the proposed merges are
    applied as written and the file is created for a person to edit before the next run. ``embedder=None``
    loads the bundled MiniLM. ``lm``/``lm_wording`` are optional LM helpers, recorded per principle.
    """
    selection = select_statements(statements, threshold=threshold, count=count, exclude=exclude)
    table = selection.statements
    ids = [str(i) for i in table.index]
    texts = [clean(t) for t in table["text"]]
    review_path = Path(review) if review is not None else None
    if review_path is not None and review_path.exists():
        merges = read_review(review_path, ids)
        reviewed = True
    else:
        if embedder is None:
            from ccai.constitution.dedup import default_embedder

            embedder = default_embedder()
        vectors = embedder([core_text(t) for t in texts])
        priority = table["gac"].fillna(0).tolist()
        merges = propose_merges(ids, texts, vectors, merge_similarity, priority=priority, wording=lm_wording)
        reviewed = False
        if review_path is not None:
            write_review(
                review_path,
                merges,
                {"threshold": selection.threshold, "merge_similarity": merge_similarity, "n": len(ids)},
            )
    groups: list[tuple[list[str], Merge | None]] = []
    merged: set[str] = set()
    for merge in merges:
        if merge.decision == "accept":
            groups.append((merge.members, merge))
            merged.update(merge.members)
    groups += [([sid], None) for sid in ids if sid not in merged]
    gac = table["gac"].fillna(0)
    groups.sort(key=lambda g: (-max(gac[m] for m in g[0]), ids.index(g[0][0])))

    keeps = [merge.keep if merge else members[0] for members, merge in groups]
    texts_kept = [table.loc[k, "text"] for k in keeps]
    rewritten = rewrite_all_with_lm(texts_kept, lm) if lm else [rewrite_statement(t) for t in texts_kept]
    rewrites = dict(zip(keeps, rewritten, strict=True))
    principles = []
    for (members, merge), keep, rw in zip(groups, keeps, rewritten, strict=True):
        ordered = [keep] + [m for m in members if m != keep]
        metadata: dict[str, object] = {"rewrite": rw.metadata()}
        comparison = rw.comparison
        if merge is not None:
            metadata["merge"] = {
                "id": merge.id,
                "members": ordered,
                "similarity": merge.similarity,
                "reviewed": reviewed,
            }
            if merge.wording:
                comparison = merge.wording.strip()
                metadata["merge"]["wording_by"] = merge.wording_by or "person"
            elif merge.wording_by:  # an LM proposal that was rejected: say so
                metadata["merge"]["wording_by"] = merge.wording_by
        principles.append(
            Principle(
                id=f"s{keep}",
                comparison=comparison,
                critique_request=rw.critique_request,
                revision_request=rw.revision_request,
                tags=assign_tags(comparison, rw.polarity, rw.statement),
                sources=[statement_source(m, table.loc[m], consultation, country) for m in ordered],
                metadata=metadata,
            )
        )
    constitution = Constitution(
        name=name,
        version=version,
        description=(
            f"Built from {len(ids)} statements with group-aware consensus >= {selection.threshold:.3f} "
            f"({len(principles)} principles after merging near-duplicates)."
        ),
        principles=principles,
        metadata={
            "selection": {
                "threshold": round(selection.threshold, 6),
                "count": count,
                "excluded": selection.excluded,
                "considered": selection.considered,
            },
            "merge": {"similarity": merge_similarity, "reviewed": reviewed, "embedder": "all-MiniLM-L6-v2"},
            "rewriter": f"lm ({lm_name or 'unnamed'})" if lm else "rules",
            "consultation": consultation,
            "country": country,
        },
    )
    return BuildResult(constitution, selection, merges, reviewed, review_path, rewrites)
