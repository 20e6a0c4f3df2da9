"""The stage's entry function: statements table -> public constitution, keeping every intermediate.

``build_constitution`` selects statements by GAC, proposes (or applies reviewed) merges of near-duplicates,
rewrites each group's kept statement into principle form, tags it, and returns a :class:`BuildResult` with the
selection, the merges and the constitution, so each step can be audited.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ccai.constitution.dedup import (
    DEFAULT_MERGE_SIMILARITY,
    Embedder,
    Merge,
    Wording,
    propose_merges,
    read_review,
    read_review_settings,
    read_wordings,
    same_idea_matrix,
    write_review,
)
from ccai.constitution.lm_check import check_merge_wording, rewrite_all_with_lm
from ccai.constitution.model import Constitution, Principle
from ccai.constitution.rewrite import (
    CRIT,
    PREFIX,
    REV,
    LMRewriter,
    Rewrite,
    clean,
    core_text,
    rewrite_statement,
)
from ccai.constitution.select import Selection, select_statements, statement_source, threshold_for_count
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
    review_path = Path(review) if review is not None else None
    reviewed = review_path is not None and review_path.exists()
    if embedder is None and not reviewed:
        from ccai.constitution.dedup import default_embedder

        embedder = default_embedder()
    if count is not None:
        if reviewed and review_path is not None:  # the reviewed file fixes the selection it was made for
            recorded = read_review_settings(review_path).get("threshold")
            threshold = float(recorded) if recorded is not None else None
        if threshold is None:
            assert embedder is not None
            threshold = _threshold_for_principles(statements, count, exclude, embedder, merge_similarity)
    selection = select_statements(statements, threshold=threshold, exclude=exclude)
    table = selection.statements
    geomean = str(statements.attrs.get("consensus", "")).startswith("geometric mean")
    ids = [str(i) for i in table.index]
    texts = [clean(t) for t in table["text"]]
    wordings: dict[str, Wording] = {}
    if reviewed and review_path is not None:
        merges = read_review(review_path, ids)
        wordings = read_wordings(review_path, ids)
        # what the proposals were made at, not this run's option (which a reviewed file does not use)
        merge_similarity = float(read_review_settings(review_path).get("merge_similarity", merge_similarity))
    else:
        assert embedder is not None
        cores = [core_text(t) for t in texts]
        vectors = embedder(cores)
        priority = table["gac"].fillna(0).tolist()
        allowed = same_idea_matrix(cores, vectors, embedder, merge_similarity)
        merges = propose_merges(
            ids,
            texts,
            vectors,
            merge_similarity,
            priority=priority,
            wording=lm_wording,
            allowed=allowed,
            check_wording=check_merge_wording,
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
    if count is not None:
        groups = groups[:count]  # N principles: the N best supported groups

    keeps = [merge.keep if merge else members[0] for members, merge in groups]
    texts_kept = [table.loc[k, "text"] for k in keeps]
    rewritten = rewrite_all_with_lm(texts_kept, lm) if lm else [rewrite_statement(t) for t in texts_kept]
    rewrites = dict(zip(keeps, rewritten, strict=True))
    if not reviewed and review_path is not None:
        to_word = [
            Wording(
                statement=k,
                text=rw.statement,
                proposed=None if rw.needs_wording else rw.comparison,
                reason=rw.reason if rw.needs_wording else None,
                typos={w: sug for w, sug in rw.typos},
            )
            for k, rw in rewrites.items()
            if rw.needs_wording or rw.typos
        ]
        settings = {"threshold": selection.threshold, "merge_similarity": merge_similarity, "n": len(ids)}
        write_review(review_path, merges, settings, to_word)
    principles = []
    for (members, merge), keep, rw in zip(groups, keeps, rewritten, strict=True):
        ordered = [keep] + [m for m in members if m != keep]
        metadata: dict[str, object] = {"rewrite": rw.metadata()}
        comparison, critique, revision = rw.comparison, rw.critique_request, rw.revision_request
        person: Wording | None = wordings.get(keep)
        if merge is not None:
            metadata["merge"] = {
                "id": merge.id,
                "members": ordered,
                "similarity": merge.similarity,
                "reviewed": reviewed,
            }
            if merge.wording:
                person = Wording(statement=keep, wording=merge.wording.strip())
                metadata["merge"]["wording_by"] = merge.wording_by or "person"
            elif merge.wording_by:  # an LM proposal that was rejected: say so
                metadata["merge"]["wording_by"] = merge.wording_by
        polarity = rw.polarity
        if person is not None and person.wording:
            comparison, critique, revision = forms_from_wording(person)
            # the person's words decide the direction, not the statement's (a "not" may have been reworded)
            polarity = "negative" if re.search(r"\b(least|not|never|avoid\w*)\b", comparison) else "positive"
            rewrite_meta = dict(rw.metadata())
            rewrite_meta.pop("needs_wording", None)
            rewrite_meta["worded_by"] = "person (review file)"
            metadata["rewrite"] = rewrite_meta
        principles.append(
            Principle(
                id=f"s{keep}",
                comparison=comparison,
                critique_request=critique,
                revision_request=revision,
                tags=assign_tags(comparison, polarity, rw.statement),
                sources=[statement_source(m, table.loc[m], consultation, country) for m in ordered],
                metadata=metadata,
                # a consensus that does not fall with the number of groups is comparable across
                # consultations, so it can weigh principles in a merge or in training (`weight`)
                weight=round(float(table.loc[keep, "gac"]), 4) if geomean else None,
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
            "group_labelling": statements.attrs.get("group_labelling"),
            "consensus": statements.attrs.get("consensus", "GAC (product of the per-group agree rates)"),
            "rewriter": f"lm ({lm_name or 'unnamed'})" if lm else "rules",
            "consultation": consultation,
            "country": country,
        },
    )
    return BuildResult(constitution, selection, merges, reviewed, review_path, rewrites)


def forms_from_wording(wording: Wording) -> tuple[str, str, str]:
    """A person's comparison text in all three forms, so critique and revision (training) follow the edit."""
    comparison = wording.wording.strip() if wording.wording else ""
    tail = comparison[len(PREFIX) :] if comparison.startswith(PREFIX) else comparison
    tail = tail.rstrip(" .")
    critique = (
        wording.critique_request or f"{CRIT} falls short of this: the response should be one that {tail}."
    )
    revision = wording.revision_request or f"{REV} is the response that {tail}."
    return comparison if comparison.endswith(".") else comparison + ".", critique, revision


def _threshold_for_principles(
    statements: pd.DataFrame,
    count: int,
    exclude: Iterable[str],
    embedder: Embedder,
    merge_similarity: float,
) -> float:
    """The GAC threshold whose selection gives at least ``count`` principles after the proposed merges.

    ``--count N`` means N principles, not N statements: statements are added in GAC order until the
    merges leave N groups (the build then keeps the N best supported).
    """
    pool = select_statements(statements, threshold=0.0, exclude=exclude).statements
    pool = pool[pool["gac"].notna()]
    if count < 1:
        raise ValueError(f"--count must be at least 1, got {count}")
    texts = [core_text(clean(t)) for t in pool["text"]]
    vectors = embedder(texts)
    low, high = count, len(pool)
    if high < count:
        raise ValueError(f"--count {count} is more than the {high} statements with a GAC")

    allowed = same_idea_matrix(texts, vectors, embedder, merge_similarity)

    def principles(k: int) -> int:
        ids = [str(i) for i in pool.index[:k]]
        merges = propose_merges(ids, texts[:k], vectors[:k], merge_similarity, allowed=allowed[:k, :k])
        return k - sum(len(m.members) - 1 for m in merges)

    if principles(high) < count:
        raise ValueError(
            f"--count {count}: all {high} statements give only {principles(high)} principles after merging"
        )
    while low < high:  # the fewest statements that give count principles (principles grow with k)
        mid = (low + high) // 2
        if principles(mid) >= count:
            high = mid
        else:
            low = mid + 1
    return threshold_for_count(pool, low)
