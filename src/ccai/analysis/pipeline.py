"""The whole opinion analysis on one screen: votes -> filters -> PCA -> groups -> statistics -> result.

``OpinionAnalysis`` is a scikit-learn-style estimator (the constructor only stores parameters, ``fit`` returns
self and leaves ``result_``); ``analyze`` is the one-call form. Each step is a plain function in ``matrix``,
``groups`` or ``consensus``, so the method can be read top to bottom in ``OpinionAnalysis.fit``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from ccai import __version__
from ccai.analysis import consensus as cs
from ccai.analysis.agreement import compare_labelings
from ccai.analysis.groups import (
    BASE_K,
    MAX_GROUPS,
    cluster_groups,
    cluster_hdbscan,
    polis_row_order,
    project_participants,
    project_statements,
    sparse_pca,
)
from ccai.analysis.matrix import (
    FilterStep,
    accepted,
    as_id_array,
    build_matrix,
    moderated_out,
    polis_in_conv,
    straightliner_mask,
)
from ccai.analysis.replay import K_BUFFER, replay_updates
from ccai.analysis.result import AnalysisResult

Moderation = Literal["polis", "accepted", "none"]


def parse_groups(groups: str | int) -> str | int:
    """'polis' | 'given' | 'hdbscan' | k as int, 'k=N' or 'N' -> 'polis' | 'given' | 'hdbscan' | int."""
    if isinstance(groups, bool):
        raise ValueError(
            f"groups: expected 'polis', 'given', 'hdbscan' or a number of groups, got {groups!r}"
        )
    if isinstance(groups, int | np.integer):
        if groups < 1:
            raise ValueError(f"groups: a forced number of groups must be at least 1, got {groups}")
        return int(groups)
    text = str(groups).strip().lower()
    if text in ("polis", "given", "hdbscan"):
        return text
    digits = text[2:] if text.startswith("k=") else text
    if digits.isdigit() and int(digits) >= 1:
        return int(digits)
    raise ValueError(f"groups: expected 'polis', 'given', 'hdbscan' or 'k=N' (e.g. k=2), got {groups!r}")


def _as_series(labels: Mapping | pd.Series | None, name: str) -> pd.Series | None:
    if labels is None:
        return None
    series = labels if isinstance(labels, pd.Series) else pd.Series(dict(labels))
    if series.index.has_duplicates:
        dup = series.index[series.index.duplicated()][0]
        raise ValueError(f"{name}: participant {dup} has more than one label")
    return series.rename(name)


class OpinionAnalysis:
    """Polis-grade opinion analysis of a vote table.

    Parameters
    ----------
    groups : "polis" (ccai clusters, k by silhouette as Polis does), "given" (use ``given_groups`` in
        ``fit``), an int / "k=N" to force the number of groups, or "hdbscan" (scikit-learn's HDBSCAN on
        the opinion map: k from the data, outliers ungrouped).
    exclude : participant ids removed before anything else (e.g. the CCAI organisers' ids-to-toss).
    more_than : keep only participants with more than this many votes (CCAI organisers: 25). None = off.
    straightliners : drop participants with >= 5 votes who cast the same vote on everything.
    moderation : "polis" keeps moderated-out / meta statements as all-zero columns, as Polis does;
        "accepted" keeps only statements a moderator accepted (the CCAI organisers' rule); "none" ignores it.
    min_votes : Polis's clustering rule: a participant is clustered with >= min(min_votes, n_statements)
        votes (greedy fill to 15). With given groups every labelled participant is counted instead.
    max_groups, base_k : Polis's caps: at most 5 groups, 100 base clusters.
    seed : start vector of the SVD (the clustering itself is deterministic).
    history : "batch" (one analysis of the final votes) or "replay": the votes (they need timestamps, e.g.
        a Polis votes.csv; pass the whole vote log) are replayed in time order through updates of
        ``tick_seconds``, so that the clustered set is Polis's sticky one (once in, always in) and k is
        Polis's smoothed choice (a new k must win ``k_buffer`` consecutive updates). See ``replay.py``.
    """

    def __init__(
        self,
        *,
        groups: str | int = "polis",
        exclude: Iterable = (),
        more_than: int | None = None,
        straightliners: bool = False,
        moderation: Moderation = "polis",
        min_votes: int = 7,
        max_groups: int = MAX_GROUPS,
        base_k: int = BASE_K,
        seed: int = 0,
        history: str = "batch",
        tick_seconds: float = 60.0,
        k_buffer: int = K_BUFFER,
    ) -> None:
        self.groups = groups
        self.exclude = exclude
        self.more_than = more_than
        self.straightliners = straightliners
        self.moderation = moderation
        self.min_votes = min_votes
        self.max_groups = max_groups
        self.base_k = base_k
        self.seed = seed
        self.history = history
        self.tick_seconds = tick_seconds
        self.k_buffer = k_buffer

    @classmethod
    def _param_names(cls) -> list[str]:
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> OpinionAnalysis:
        """Change constructor arguments; unknown names are an error (scikit-learn convention)."""
        names = self._param_names()
        for name, value in params.items():
            if name not in names:
                raise ValueError(f"unknown parameter {name!r}; expected one of {', '.join(names)}")
            setattr(self, name, value)
        return self

    def fit(
        self,
        votes: pd.DataFrame,
        statements: pd.DataFrame | None = None,
        *,
        given_groups: Mapping | pd.Series | None = None,
        reference_groups: Mapping | pd.Series | None = None,
        labelings: Mapping[str, Mapping | pd.Series] | None = None,
        about: Mapping[str, str] | None = None,
    ) -> OpinionAnalysis:
        """Run the analysis; ``self.result_`` holds the :class:`AnalysisResult`.

        ``given_groups``: participant -> label (NA = unlabelled), used when ``groups='given'`` and always
        compared with the other labelings. ``reference_groups``: Polis's own ``group-id``, compared only.
        ``labelings``: more named labelings to compare (e.g. {"published": ..., "realigned": ...}).
        ``about``: the conversation's identity (a Polis export's summary.csv: topic, url, description...),
        shown at the top of the report.
        """
        # One BLAS thread: the dense products here are small (a dense SVD below 250k cells, 100 x 100
        # silhouettes), where thread start-up and, on a busy machine, oversubscription cost 10-100x the
        # work (0.26-2 s instead of 0.02 s measured for the SVD on the shared 2-core machine).
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return self._fit(votes, statements, given_groups, reference_groups, labelings, about)

    def _fit(self, votes, statements, given_groups, reference_groups, labelings, about) -> OpinionAnalysis:
        mode = parse_groups(self.groups)
        if self.moderation not in ("polis", "accepted", "none"):
            raise ValueError(f"moderation: expected 'polis', 'accepted' or 'none', got {self.moderation!r}")
        for name, lowest in (("min_votes", 0), ("more_than", 0), ("max_groups", 1), ("base_k", 1)):
            value = getattr(self, name)
            if value is None and name == "more_than":
                continue
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lowest:
                raise ValueError(f"{name}: expected a whole number >= {lowest}, got {value!r}")
        if self.history not in ("batch", "replay"):
            raise ValueError(f"history: expected 'batch' or 'replay', got {self.history!r}")
        buffer = self.k_buffer
        if isinstance(buffer, bool) or not isinstance(buffer, int | np.integer) or buffer < 1:
            raise ValueError(f"k_buffer: expected a whole number >= 1, got {self.k_buffer!r}")
        tick = self.tick_seconds
        if isinstance(tick, bool) or not isinstance(tick, int | float | np.number) or not tick > 0:
            raise ValueError(f"tick_seconds: expected a positive number of seconds, got {tick!r}")
        given = _as_series(given_groups, "given_group")
        reference = _as_series(reference_groups, "polis_group")
        if mode == "given" and given is None:
            raise ValueError("groups='given' needs given_groups (participant -> group label)")

        # 1. matrix and removal filters ------------------------------------------------------------
        full = build_matrix(votes)
        input_hash = full.content_hash()
        removed_by = pd.Series("", index=full.participants, dtype=object)
        steps: list[FilterStep] = []
        matrix = full

        def drop_rows(mask: np.ndarray, name: str, description: str) -> None:
            nonlocal matrix
            ids = matrix.participants[mask]
            removed_by.loc[ids] = name
            steps.append(FilterStep(name, description, removed_participants=ids.tolist()))
            matrix = matrix.keep(rows=~mask)

        excluded = as_id_array(self.exclude, matrix.participants)
        if len(excluded):
            drop_rows(
                np.isin(matrix.participants, excluded),
                "exclude",
                f"explicit exclusion list ({len(excluded)} ids given)",
            )
        if self.more_than is not None:
            drop_rows(
                matrix.votes_per_participant() <= self.more_than,
                "more_than",
                f"participants with {self.more_than} votes or fewer",
            )
        if self.straightliners:
            drop_rows(
                straightliner_mask(matrix),
                "straightliners",
                "participants with >= 5 votes, all the same (agree / disagree / pass)",
            )

        warnings: list[str] = []
        unknown = np.zeros(matrix.shape[1], bool)
        if statements is not None:
            # A vote on a statement the statements table does not know has no text and no moderation
            # status: it must never become an eligible statement (a blank "consensus" principle).
            unknown = ~np.isin(matrix.statements, statements.index.to_numpy())
            if unknown.any():
                ids = matrix.statements[unknown]
                n_votes = int(unknown[matrix.cols].sum())
                shown = ", ".join(str(i) for i in ids[:10]) + (" ..." if len(ids) > 10 else "")
                warnings.append(
                    f"{len(ids)} statement id(s) have votes ({n_votes:,}) but are missing from the "
                    f"statements table (comments.csv): {shown}; they are excluded from every statistic "
                    "and selection (kept as all-zero columns, like moderated-out statements)"
                )
                steps.append(
                    FilterStep(
                        "unknown_statements",
                        "voted-on statement ids missing from the statements table, zeroed",
                        zeroed_statements=ids.tolist(),
                    )
                )

        zeroed = unknown.copy()
        if self.moderation == "polis":
            zeroed = moderated_out(statements, matrix.statements) | unknown
            steps.append(
                FilterStep(
                    "moderated_out",
                    "rejected or meta statements, kept as all-zero columns (Polis)",
                    zeroed_statements=matrix.statements[zeroed & ~unknown].tolist(),
                )
            )
        elif self.moderation == "accepted":
            keep = accepted(statements, matrix.statements) & ~unknown
            steps.append(
                FilterStep(
                    "not_accepted",
                    "statements not accepted by a moderator, dropped",
                    removed_statements=matrix.statements[~keep].tolist(),
                )
            )
            matrix = matrix.keep(cols=keep)
            unknown = np.zeros(matrix.shape[1], bool)
            zeroed = np.zeros(matrix.shape[1], bool)
            empty = matrix.votes_per_participant() == 0
            if empty.any():
                drop_rows(empty, "no_votes_left", "participants whose votes were all on dropped statements")
        if matrix.shape[0] == 0 or matrix.shape[1] == 0:
            raise ValueError("no votes are left after the filters; loosen exclude / more_than / moderation")

        # 2. opinion space --------------------------------------------------------------------------
        pca = sparse_pca(matrix, zeroed, seed=self.seed)
        xy = project_participants(matrix, zeroed, pca)

        # 3. ccai's own groups (Polis mode or forced k) -------------------------------------------------
        counts = matrix.votes_per_participant()
        replayed = None
        if self.history == "replay":
            replayed = replay_updates(
                votes,
                matrix,
                zeroed,
                tick_seconds=float(self.tick_seconds),
                min_votes=self.min_votes,
                k_buffer=int(self.k_buffer),
                base_k=self.base_k,
                max_groups=self.max_groups,
                seed=self.seed,
            )
            clustered = replayed.in_conv
            rule = f"at {self.tick_seconds:g}-s updates, kept once in (Polis's sticky in-conv set)"
        else:
            clustered = polis_in_conv(counts, matrix.shape[1], self.min_votes)
            rule = "(Polis; greedy fill to 15)"
        steps.append(
            FilterStep(
                "min_votes",
                f"not clustered: fewer than min({self.min_votes}, n_statements) votes {rule}",
                removed_participants=matrix.participants[~clustered].tolist(),
            )
        )
        order = polis_row_order(matrix)
        order = order[clustered[order]]
        forced = mode if isinstance(mode, int) else None
        clustering = cluster_groups(xy[order], k=forced, base_k=self.base_k, max_k=self.max_groups)
        if replayed is not None and forced is None and replayed.k is not None and replayed.k != clustering.k:
            # the smoother still shows an earlier k: cluster with it, keep every k's silhouette for the report
            scores = clustering.silhouettes
            shown = min(replayed.k, max(scores)) if scores else replayed.k  # a k no longer possible: clamp
            clustering = cluster_groups(xy[order], k=shown, base_k=self.base_k, max_k=self.max_groups)
            clustering.silhouettes = scores
        own = np.full(matrix.shape[0], -1)
        own[order] = clustering.labels

        # 4. the labels the statistics use -------------------------------------------------------------
        if mode == "given":
            aligned = given.reindex(matrix.participants)
            codes, names = pd.factorize(aligned, sort=True)
            row_group, group_names, source = codes.astype(np.int64), list(names), "given"
        elif mode == "hdbscan":
            row_group = np.full(matrix.shape[0], -1)
            row_group[order] = cluster_hdbscan(xy[order])
            group_names, source = list(range(int(row_group.max()) + 1)), "hdbscan"
        else:
            row_group, group_names, source = own, list(range(clustering.k)), "ccai"
        n_groups = len(group_names)
        if n_groups == 0:
            hint = (
                "HDBSCAN found no dense group; try groups='polis'"
                if mode == "hdbscan"
                else ("no participant in the analysis has a group label")
            )
            raise ValueError(hint)

        # 5. statement statistics ----------------------------------------------------------------------
        agree_g, disagree_g, seen_g = cs.tally(matrix, row_group, n_groups)
        agree, disagree, seen = agree_g.sum(0), disagree_g.sum(0), seen_g.sum(0)
        eligible = ~zeroed
        table = _statement_table(matrix, statements, eligible, pca, (agree_g, disagree_g, seen_g))
        table["status"] = _statement_status(table, unknown)
        table = _add_unvoted(table, statements, n_groups)
        warnings += degenerate_warnings(matrix, eligible, row_group, n_groups)
        repness = cs.repness_frame(
            cs.select_repness(agree_g, disagree_g, seen_g, eligible), matrix.statements, group_names
        )
        everyone = np.zeros(matrix.shape[0], np.int64)  # Polis's majority lists count every participant
        all_a, all_d, all_s = (x[0] for x in cs.tally(matrix, everyone, 1))
        majority = cs.majority_consensus(all_a, all_d, all_s, eligible)
        consensus = {
            side: [(matrix.statements[j].item(), s) for j, s in pairs] for side, pairs in majority.items()
        }
        uncertain = [
            (matrix.statements[j].item(), s) for j, s in cs.uncertainty(agree, disagree, seen, eligible)
        ]

        # 6. participants and agreement between labelings ---------------------------------------------
        part = _participant_table(full, matrix, removed_by, clustered, row_group, group_names, own, xy)
        if given is not None:
            part["given_group"] = given.reindex(part.index)
        if reference is not None:
            part["polis_group"] = reference.reindex(part.index)
        kept = part["removed_by"] == ""
        labelings_all = {}
        if given is not None:
            labelings_all["given"] = part.loc[kept, "given_group"]
        if reference is not None:
            labelings_all["polis"] = part.loc[kept, "polis_group"]
        for name, extra in (labelings or {}).items():
            labelings_all[name] = _as_series(extra, name).reindex(part.index[kept])
        labelings_all["ccai"] = part.loc[kept, "ccai_group"]
        # a labeling with no label on anyone here (e.g. an export without group-id) has nothing to compare
        agreement = compare_labelings({name: s for name, s in labelings_all.items() if s.notna().any()})

        params = {
            key: (list(value) if key == "exclude" else value) for key, value in self.get_params().items()
        }
        params["exclude"] = [v.item() if hasattr(v, "item") else v for v in params["exclude"]]
        self.result_ = AnalysisResult(
            matrix=matrix,
            filters=steps,
            pca=pca,
            clustering=clustering,
            participants=part,
            statements=table,
            repness=repness,
            consensus=consensus,
            uncertainty=uncertain,
            agreement=agreement,
            group_source=source,
            group_names=group_names,
            params=params,
            seed=self.seed,
            input_hash=input_hash,
            version=__version__,
            warnings=warnings,
            about={str(k): str(v) for k, v in (about or {}).items()},
            participation=participation(votes, statements),
            replay=None if replayed is None else replayed.summary(),
        )
        return self


def analyze(
    votes: pd.DataFrame,
    statements: pd.DataFrame | None = None,
    *,
    given_groups: Mapping | pd.Series | None = None,
    reference_groups: Mapping | pd.Series | None = None,
    labelings: Mapping[str, Mapping | pd.Series] | None = None,
    about: Mapping[str, str] | None = None,
    **params: Any,
) -> AnalysisResult:
    """Analyse a vote table (agree = +1, disagree = -1, pass = 0) in one call.

    ``params`` are :class:`OpinionAnalysis`'s constructor arguments (``groups``, ``exclude``, ``more_than``,
    ``straightliners``, ``moderation``, ``min_votes``, ``max_groups``, ``base_k``, ``seed``, ``history``,
    ``tick_seconds``, ``k_buffer``); the other
    arguments go to its ``fit``. Example::

        result = analyze(export.votes, export.statements, reference_groups=export.participants["group_id"])
        result.statements.sort_values("gac", ascending=False).head()
    """
    unknown = sorted(set(params) - set(OpinionAnalysis._param_names()))
    if unknown:
        raise ValueError(
            f"analyze: unknown argument(s) {', '.join(unknown)}; "
            f"expected {', '.join(OpinionAnalysis._param_names())}"
        )
    estimator = OpinionAnalysis(**params)
    estimator.fit(
        votes,
        statements,
        given_groups=given_groups,
        reference_groups=reference_groups,
        labelings=labelings,
        about=about,
    )
    return estimator.result_


def _statement_table(matrix, statements, eligible, pca, counts) -> pd.DataFrame:
    """One row per statement: metadata, counts overall and per group, GAC variants, PI, map, priority."""
    agree_g, disagree_g, seen_g = counts
    agree, disagree, seen = agree_g.sum(0), disagree_g.sum(0), seen_g.sum(0)
    statement_xy, extremity = project_statements(pca)
    table = pd.DataFrame(index=pd.Index(matrix.statements, name="statement_id"))
    meta = (
        statements.reindex(matrix.statements)
        if statements is not None
        else pd.DataFrame(index=matrix.statements)
    )
    table["text"] = meta["text"].to_numpy() if "text" in meta else ""
    table["moderated"] = meta["moderated"].to_numpy() if "moderated" in meta else pd.NA
    table["is_meta"] = meta["is_meta"].fillna(False).astype(bool).to_numpy() if "is_meta" in meta else False
    table["eligible"] = eligible
    table["n_seen"], table["n_agree"], table["n_disagree"] = seen, agree, disagree
    table["n_pass"] = seen - agree - disagree
    table["gac"] = cs.gac_ccai(agree_g, seen_g)
    table["gac_polis"] = cs.gac_polis(agree_g, seen_g)
    table["gac_pass_excluded"] = cs.gac_pass_excluded(agree_g, disagree_g)
    table["gac_jeffreys"] = cs.gac_jeffreys(agree_g, disagree_g, seen_g)
    table["gac_disagree"] = cs.gac_disagree(disagree_g, seen_g)
    for name, values in cs.polarization(agree, disagree, seen).items():
        table[name] = values
    table["mean"] = pca.center
    table["extremity"] = extremity
    table["x"], table["y"] = statement_xy[:, 0], statement_xy[:, 1]
    table["priority"] = cs.comment_priority(agree, disagree, seen, extremity, table["is_meta"].to_numpy())
    for k in range(len(agree_g)):
        table[f"g{k}_agree"], table[f"g{k}_disagree"] = agree_g[k], disagree_g[k]
        table[f"g{k}_pass"], table[f"g{k}_seen"] = seen_g[k] - agree_g[k] - disagree_g[k], seen_g[k]
    return table


def _participant_table(full, matrix, removed_by, clustered, row_group, group_names, own, xy) -> pd.DataFrame:
    """One row per input participant: votes, why removed, clustered, in the analysis, groups, position."""
    part = pd.DataFrame(index=pd.Index(full.participants, name="participant_id"))
    part["n_votes"] = full.votes_per_participant()
    part["removed_by"] = removed_by
    pos = pd.Series(np.arange(matrix.shape[0]), index=matrix.participants).reindex(part.index)
    has = pos.notna().to_numpy()
    rows = pos.to_numpy()[has].astype(int)
    part["clustered"] = False
    part.loc[has, "clustered"] = clustered[rows]
    part["in_analysis"] = False
    part.loc[has, "in_analysis"] = row_group[rows] >= 0
    names = np.asarray(group_names, dtype=object)
    group = pd.Series(pd.NA, index=part.index, dtype=object)
    group[has] = np.where(row_group[rows] >= 0, names[np.maximum(row_group[rows], 0)], pd.NA)
    part["group"] = group
    ccai_group = pd.Series(pd.NA, index=part.index, dtype="Int64")
    ccai_group[has] = pd.array(np.where(own[rows] >= 0, own[rows], -1), dtype="Int64")
    part["ccai_group"] = ccai_group.where(ccai_group >= 0, pd.NA)
    part["x"], part["y"] = np.nan, np.nan
    part.loc[has, "x"], part.loc[has, "y"] = xy[rows, 0], xy[rows, 1]
    return part


def _statement_status(table: pd.DataFrame, unknown: np.ndarray) -> np.ndarray:
    """Why each statement counts or not: "eligible", "moderated out", "meta", "not in comments.csv"."""
    status = np.full(len(table), "eligible", dtype=object)
    status[~table["eligible"].to_numpy(bool)] = "moderated out"
    status[table["is_meta"].to_numpy(bool)] = "meta"
    status[unknown] = "not in comments.csv"
    return status


def _add_unvoted(table: pd.DataFrame, statements: pd.DataFrame | None, n_groups: int) -> pd.DataFrame:
    """Append the statements of the statements table that nobody voted on (counts 0, no scores), so
    statements.csv lists every statement; they are not eligible (nothing is known of their support)."""
    if statements is None:
        return table
    missing = statements.index.difference(table.index)
    if not len(missing):
        return table
    meta = statements.reindex(missing)
    extra = pd.DataFrame(index=pd.Index(missing, name=table.index.name))
    extra["text"] = meta["text"].to_numpy() if "text" in meta else ""
    extra["moderated"] = meta["moderated"].to_numpy() if "moderated" in meta else pd.NA
    extra["is_meta"] = meta["is_meta"].fillna(False).astype(bool).to_numpy() if "is_meta" in meta else False
    extra["eligible"] = False
    counts = ["n_seen", "n_agree", "n_disagree", "n_pass"] + [
        f"g{k}_{c}" for k in range(n_groups) for c in ("agree", "disagree", "pass", "seen")
    ]
    for name in counts:
        extra[name] = 0
    extra["status"] = "no votes"
    out = pd.concat([table, extra.reindex(columns=table.columns)], axis=0)
    for name in counts:
        out[name] = out[name].astype(np.int64)
    out["eligible"] = out["eligible"].astype(bool)
    out["is_meta"] = out["is_meta"].astype(bool)
    return out.sort_index()


MIN_PARTICIPANTS = 10  # below this many grouped participants, groups and GAC say little


def degenerate_warnings(matrix, eligible: np.ndarray, row_group: np.ndarray, n_groups: int) -> list[str]:
    """Plain-language warnings for inputs whose statistics are undefined or meaningless (shown in the CLI
    and the report, stored in summary.json), so nobody reads "nan" or a normal-looking report as a finding."""
    out = []
    if not eligible.any():
        out.append(
            "no statement is eligible (all are moderated out, meta or unknown): GAC and PI summaries are "
            "undefined (shown as '–'), and nothing can be selected"
        )
    used = eligible[matrix.cols]
    if used.any() and not (matrix.values[used] != 0).any():
        out.append(
            "every vote on an eligible statement is a pass: there is no agreement or disagreement to "
            "analyse, so the opinion map, groups and GAC (0 everywhere) carry no information"
        )
    grouped = int((row_group >= 0).sum())
    if grouped < MIN_PARTICIPANTS:
        out.append(
            f"only {grouped} participant(s) are in the groups (fewer than {MIN_PARTICIPANTS}): opinion "
            "groups, GAC and representative statements are not meaningful at this size"
        )
    if n_groups < 2:
        out.append("only one opinion group: group-aware consensus reduces to plain agreement")
    return out


SHORT_SPAN_DAYS = 3  # a conversation shorter than this is binned by hour: by day it is two or three points


def participation(votes: pd.DataFrame, statements: pd.DataFrame | None) -> pd.DataFrame:
    """Cumulative participants (by first vote), votes and statements per day (per hour when the activity
    spans under three days), from whatever timestamps (ms) the export has; an empty frame when it has none
    (e.g. a matrix-only export)."""
    stamps = []
    if "timestamp" in votes.columns:
        stamps.append(votes["timestamp"].dropna())
    if statements is not None and "timestamp" in statements:
        stamps.append(statements["timestamp"].dropna())
    stamps = [s for s in stamps if len(s)]
    if not stamps:
        return pd.DataFrame(columns=["participants", "votes", "statements"], dtype=float)
    span_ms = max(s.max() for s in stamps) - min(s.min() for s in stamps)
    unit = "h" if span_ms < SHORT_SPAN_DAYS * 86_400_000 else "D"
    series = {}
    if "timestamp" in votes.columns and votes["timestamp"].notna().any():
        ts = votes[["participant", "timestamp"]].dropna()
        when = pd.to_datetime(ts["timestamp"], unit="ms").dt.floor(unit)
        series["votes"] = when.value_counts().sort_index().cumsum()
        first = when.groupby(ts["participant"].to_numpy()).min()
        series["participants"] = first.value_counts().sort_index().cumsum()
    if statements is not None and "timestamp" in statements and statements["timestamp"].notna().any():
        when = pd.to_datetime(statements["timestamp"].dropna(), unit="ms").dt.floor(unit)
        series["statements"] = when.value_counts().sort_index().cumsum()
    frame = pd.DataFrame(series).sort_index().ffill().fillna(0)
    frame.index.name = "hour" if unit == "h" else "day"
    return frame
