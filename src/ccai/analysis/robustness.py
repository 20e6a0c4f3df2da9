"""How firm is a GAC selection? Selection certificates (bootstrap) and brigading margins.

A constitution built by thresholding GAC inherits every accident of who happened to vote. Two questions no
Polis tool answers:

* **Selection certificate**: if the consultation were run again with a different draw of the same
  population, would this statement still be selected? We resample the participants with replacement
  (B times, seeded), redo the opinion space and the clustering on each resample (re-clustering included:
  k is re-chosen by silhouette), recompute GAC and apply the same selection rule (a threshold, or "the top
  n"). ``p_selected`` is the share of resamples in which the statement is selected.
* **Brigading margin**: how many coordinated new participants, voting as a bloc, would push a selected
  statement out of the selection (or a rejected one in)? A bloc that joins group g and disagrees with a
  statement divides that group's agree share by (seen_g + x) / seen_g, so the cheapest bloc joins the group
  where that hurts most; solving for x gives the margin with the groups held fixed. Because a bloc also
  moves the opinion space and can change the groups, the smallest margins are then checked by re-running
  the whole analysis with the bloc added (re-clustering included), growing x until the statement really
  flips (:func:`verify_margin`).

Speed: each resample is a weighted re-analysis of the already-filtered matrix: column means and tallies
by ``bincount`` with the bootstrap multiplicities as weights, the top-2 PCA by a few warm-started subspace
iterations from the full-data components (two sparse products each), and the Polis clustering with the
multiplicities as k-means weights. On the CCAI consultation (1,002 x 275) that is ~50 ms per resample on
one core, so B = 200 fits the 30 s goal on the shared 2-core machine without parallel workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccai.analysis import consensus as cs
from ccai.analysis.groups import cluster_groups, polis_row_order
from ccai.analysis.paper import CCAI_THRESHOLD

__all__ = ["Certificate", "brigading_margins", "selection_certificates", "verify_margin"]


@dataclass
class Certificate:
    """Per-statement probability of passing the selection rule under participant resampling."""

    p_selected: pd.Series  # index statement_id (eligible statements), values in [0, 1]
    n_boot: int
    rule: str
    seed: int
    k_counts: dict[int, int] = field(default_factory=dict)  # how often each k was chosen

    def summary(self) -> dict:
        p = self.p_selected
        return {
            "n_boot": self.n_boot,
            "rule": self.rule,
            "seed": self.seed,
            "k_counts": {str(k): v for k, v in sorted(self.k_counts.items())},
            "selected_95": int((p >= 0.95).sum()),
            "uncertain_5_95": int(((p > 0.05) & (p < 0.95)).sum()),
        }


def _rule(threshold: float | None, count: int | None) -> str:
    if (threshold is None) == (count is None):
        raise ValueError("give exactly one selection rule: threshold=... (GAC >= t) or count=... (top n)")
    if count is not None and count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    return f"GAC >= {threshold:g}" if threshold is not None else f"top {count} by GAC"


def _selected(
    gac: np.ndarray, eligible: np.ndarray, threshold: float | None, count: int | None
) -> np.ndarray:
    """Mask of statements the rule selects (ties at the n-th value are all selected, as in select_by_gac)."""
    score = np.where(eligible, gac, -np.inf)
    if threshold is not None:
        return score >= threshold
    cut = np.sort(score)[::-1][min(count, int(eligible.sum())) - 1]
    return eligible & (score >= cut)


class _Weighted:
    """The filtered vote matrix, ready for weighted re-analyses (one per resample)."""

    def __init__(self, result) -> None:
        matrix = result.matrix
        self.matrix = matrix
        n, m = matrix.shape
        self.n, self.m = n, m
        eligible = result.statements["eligible"].reindex(matrix.statements).fillna(False).to_numpy(bool)
        self.zeroed = ~eligible
        keep = ~self.zeroed[matrix.cols]
        self.rows, self.cols = matrix.rows[keep], matrix.cols[keep]
        self.values = matrix.values[keep].astype(np.float64)
        self.all_rows, self.all_cols, self.all_values = matrix.rows, matrix.cols, matrix.values
        clustered = result.participants["clustered"].reindex(matrix.participants).fillna(False).to_numpy(bool)
        order = polis_row_order(matrix)
        self.order = order[clustered[order]]
        self.seen_rows = np.bincount(self.rows, minlength=n) + int(self.zeroed.sum())
        self.components = result.pca.components.copy()
        self.given = result.group_source != "ccai"
        from ccai.analysis.pipeline import parse_groups

        self.fixed_k = isinstance(parse_groups(result.params.get("groups", "polis")), int)
        self.k = result.k
        self.eligible = eligible
        if self.given:
            codes = pd.Index(result.group_names)
            labels = result.participants["group"].reindex(matrix.participants)
            self.given_labels = np.where(labels.notna(), codes.get_indexer(labels), -1)

    def analyse(self, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(agree, disagree, seen) per group and statement, and k, for participants weighted by ``weight``."""
        m = self.m
        w_vote = weight[self.rows]
        seen = np.bincount(self.cols, weights=w_vote, minlength=m)
        total = np.bincount(self.cols, weights=w_vote * self.values, minlength=m)
        center = np.divide(total, seen, out=np.zeros(m), where=seen > 0)
        if self.given:
            row_group = self.given_labels
            k = self.k
        else:
            data = self.values - center[self.cols]
            centred = sp.csr_matrix((data, (self.rows, self.cols)), shape=(self.n, m))
            weighted = sp.csr_matrix((data * np.sqrt(w_vote), (self.rows, self.cols)), shape=(self.n, m))
            basis = self.components.T.copy()  # m x 2, warm start from the full-data components
            for _ in range(6):  # subspace iteration on W^(1/2) C: converges in a few steps from a warm start
                basis, _ = np.linalg.qr(weighted.T @ (weighted @ basis))
            small = weighted @ basis
            _, _, vt = np.linalg.svd(small, full_matrices=False)
            components = (basis @ vt.T).T
            raw = centred @ components.T
            xy = raw * np.sqrt(m / np.maximum(self.seen_rows, 1))[:, None]
            use = self.order[weight[self.order] > 0]
            forced = self.k if self.fixed_k else None
            clustering = cluster_groups(xy[use], k=forced, weights=weight[use])
            row_group = np.full(self.n, -1)
            row_group[use] = clustering.labels
            k = clustering.k
        group = row_group[self.all_rows]
        ok = group >= 0
        key = group[ok].astype(np.int64) * m + self.all_cols[ok]
        w = weight[self.all_rows[ok]]
        vals = self.all_values[ok]
        size = k * m
        agree = np.bincount(key, weights=w * (vals == 1), minlength=size).reshape(k, m)
        disagree = np.bincount(key, weights=w * (vals == -1), minlength=size).reshape(k, m)
        seen_g = np.bincount(key, weights=w, minlength=size).reshape(k, m)
        return agree, disagree, seen_g, k


def _gac(variant: str, agree, disagree, seen) -> np.ndarray:
    name = cs.gac_variant_name(variant)
    if name == "gac":
        return cs.gac_ccai(agree, seen)
    if name == "gac_polis":
        return cs.gac_polis(agree, seen)
    if name == "gac_pass_excluded":
        return cs.gac_pass_excluded(agree, disagree)
    return cs.gac_jeffreys(agree, disagree, seen)


def selection_certificates(
    result,
    *,
    threshold: float | None = None,
    count: int | None = None,
    variant: str = "gac",
    n_boot: int = 200,
    seed: int = 0,
    progress=None,
) -> Certificate:
    """Bootstrap the participants ``n_boot`` times (seeded), re-cluster each resample and return, per
    eligible statement, the share of resamples in which the rule (``threshold`` or ``count``) selects it.

    With given groups (``groups='given'``) the labels are kept, not re-clustered; with a forced k the k is
    kept and the clustering redone. ``progress(i, n_boot)`` is called after each resample.
    """
    rule = _rule(threshold, count)
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    from threadpoolctl import threadpool_limits

    work = _Weighted(result)
    rng = np.random.default_rng(seed)
    hits = np.zeros(work.m)
    k_counts: dict[int, int] = {}
    with threadpool_limits(limits=1):
        for b in range(n_boot):
            draw = rng.integers(0, work.n, work.n)
            weight = np.bincount(draw, minlength=work.n).astype(np.float64)
            agree, disagree, seen, k = work.analyse(weight)
            k_counts[k] = k_counts.get(k, 0) + 1
            hits += _selected(_gac(variant, agree, disagree, seen), work.eligible, threshold, count)
            if progress is not None:
                progress(b + 1, n_boot)
    ids = result.matrix.statements
    p = pd.Series(hits / n_boot, index=pd.Index(ids, name="statement_id"), name="p_selected")
    return Certificate(p_selected=p[work.eligible], n_boot=n_boot, rule=rule, seed=seed, k_counts=k_counts)


def brigading_margins(result, *, threshold: float | None = None, count: int | None = None) -> pd.Series:
    """For each eligible statement, the fewest new participants voting as one bloc, all joining one group,
    that flip its selection under the paper's GAC (``gac``) with the groups held fixed: a selected
    statement is pushed out by a bloc that disagrees with it, a rejected one pulled in by a bloc that
    agrees. With ``count`` the bar is the GAC of the n-th statement. Check the smallest with
    :func:`verify_margin`, which re-runs the whole analysis, re-clustering included."""
    _rule(threshold, count)
    stm = result.eligible_statements()
    stm = stm[stm["n_seen"] > 0]
    gac = stm["gac"].to_numpy(float)
    bar = threshold if threshold is not None else float(np.sort(gac)[::-1][min(count, len(gac)) - 1])
    selected = gac >= bar
    best = np.full(len(stm), np.inf)
    for g in range(result.k):
        a = stm[f"g{g}_agree"].to_numpy(float)
        s = stm[f"g{g}_seen"].to_numpy(float)
        others = np.divide(
            gac,
            np.divide(a, s, out=np.zeros_like(a), where=s > 0),
            where=(a > 0) & (s > 0),
            out=np.zeros_like(a),
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            # pushed out: others * a / (s + x) < bar  <=>  x > others * a / bar - s
            out_x = np.floor(others * a / bar - s) + 1
            # pulled in: others * (a + x) / (s + x) >= bar  <=>  x >= (bar s - others a) / (others - bar)
            in_x = np.ceil((bar * s - others * a) / (others - bar))
        x = np.where(selected, np.maximum(out_x, 1), np.where(others > bar, np.maximum(in_x, 1), np.inf))
        if not selected.all():
            # a group that never agreed (a = 0) makes the product 0 whatever the others say
            zero_group = (a == 0) & ~selected
            if zero_group.any():
                rest = np.ones(len(stm))
                for h in range(result.k):
                    if h == g:
                        continue
                    ah = stm[f"g{h}_agree"].to_numpy(float)
                    sh = stm[f"g{h}_seen"].to_numpy(float)
                    rest *= np.divide(ah, sh, out=np.zeros_like(ah), where=sh > 0)
                need = np.ceil(bar * s / np.maximum(rest - bar, 1e-12))
                x = np.where(zero_group & (rest > bar), np.maximum(need, 1), x)
        best = np.minimum(best, x)
    margin = pd.Series(best, index=stm.index, name="brigade_margin")
    return margin.where(np.isfinite(margin))


def verify_margin(
    result,
    votes: pd.DataFrame,
    statements: pd.DataFrame | None,
    statement_id,
    *,
    threshold: float,
    start: int,
    limit: int = 5000,
    **params,
) -> int | None:
    """The smallest bloc, re-clustering included, that flips ``statement_id``'s selection (GAC >= t).

    The bloc copies the majority vote of the group it targets on every other statement (so the Polis
    clustering places it there) and disagrees (or, for a rejected statement, agrees) with the target; the
    whole analysis is re-run with ``params`` for each size tried: doubling from ``start`` until the
    statement flips, then bisection. Returns None when ``limit`` participants do not flip it.
    """
    from ccai.analysis.pipeline import analyze

    before = float(result.statements.loc[statement_id, "gac"]) >= threshold
    stm = result.statements
    best = None
    for g in range(result.k):
        shares = stm[f"g{g}_agree"] - stm[f"g{g}_disagree"]
        profile = np.sign(shares[stm["n_seen"] > 0]).astype(int)
        profile[statement_id] = -1 if before else 1
        base = int(np.max(votes["participant"].to_numpy())) + 1

        def flips(x: int, profile=profile, base=base) -> bool:
            ids = np.repeat(np.arange(base, base + x), len(profile))
            bloc = pd.DataFrame(
                {
                    "participant": ids,
                    "statement": np.tile(profile.index.to_numpy(), x),
                    "vote": np.tile(profile.to_numpy(), x),
                }
            )
            both = pd.concat([votes[["participant", "statement", "vote"]], bloc], ignore_index=True)
            again = analyze(both, statements, **params)
            return (float(again.statements.loc[statement_id, "gac"]) >= threshold) != before

        lo, hi = 0, max(int(start), 1)
        while not flips(hi):
            lo, hi = hi, hi * 2
            if hi > limit:
                hi = None
                break
        if hi is None:
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if flips(mid) else (mid, hi)
        best = hi if best is None else min(best, hi)
    return best


def certify(
    result,
    *,
    threshold: float = CCAI_THRESHOLD,
    n_boot: int = 200,
    seed: int = 0,
    verify: bool = True,
    progress=None,
):
    """Add ``p_selected`` (selection certificate, B = ``n_boot``) and ``brigade_margin`` columns to
    ``result.statements`` and a ``result.certificate`` summary (the conversation's minimum margin, checked
    with re-clustering when the groups are ccai's own). Returns ``result``."""
    cert = selection_certificates(result, threshold=threshold, n_boot=n_boot, seed=seed, progress=progress)
    margins = brigading_margins(result, threshold=threshold)
    result.statements["p_selected"] = cert.p_selected.reindex(result.statements.index)
    result.statements["brigade_margin"] = margins.reindex(result.statements.index).astype("Float64")
    summary = cert.summary()
    selected = result.eligible_statements()["gac"] >= threshold
    chosen = margins[margins.index.isin(selected[selected].index)]
    summary["threshold"] = threshold
    summary["n_selected"] = int(selected.sum())
    summary["margin_min"] = None if chosen.empty else int(chosen.min())
    summary["margin_statement"] = None if chosen.empty else chosen.idxmin().item()
    summary["margin_verified"] = None
    if verify and not chosen.empty and result.group_source == "ccai":
        params = {k: v for k, v in result.params.items() if k not in ("exclude", "more_than")}
        table = result.statements[["text", "moderated", "is_meta"]]
        summary["margin_verified"] = verify_margin(
            result,
            result.matrix.to_frame(),
            table,
            chosen.idxmin(),
            threshold=threshold,
            start=int(chosen.min()),
            **params,
        )
    result.certificate = summary
    return result
