"""Per-statement statistics: tallies, group-aware consensus (GAC) variants, polarization, repness,
majority consensus, areas of uncertainty and Polis's routing priority.

Everything here works on count arrays (agree ``A``, disagree ``D``, seen ``S`` = agree + disagree + pass),
shaped ``(n_groups, n_statements)`` per group or ``(n_statements,)`` overall, so the same functions serve a
batch analysis, the web app's routing and tests with hand-made numbers.

Why several GAC variants: the CCAI constitution is chosen by thresholding GAC, and the score is disputed.
``gac`` is the CCAI paper's, ``gac_polis`` is what Polis shows, ``gac_pass_excluded`` stops passes counting as
disagreement (compdemocracy/polis #1699) and ``gac_jeffreys`` damps statements few people saw and does not
shrink with the number of groups (red-dwarf PR #120). The formulas are in docs/analysis.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ccai.analysis.matrix import VoteMatrix

Z90 = 1.2816  # one-sided 90 % significance, Polis's threshold
REPNESS_PER_GROUP = 5
CONSENSUS_PER_SIDE = 5
UNCERTAINTY_SHARE = 0.3
UNCERTAINTY_TOP = 5
META_PRIORITY = 7.0


# ---------------------------------------------------------------------------------------------------------
# Tallies


def tally(
    matrix: VoteMatrix, row_group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Agree / disagree / seen counts per group and statement; rows with group -1 are not counted."""
    m = matrix.shape[1]
    group = row_group[matrix.rows]
    use = group >= 0
    key = group[use].astype(np.int64) * m + matrix.cols[use]
    values = matrix.values[use]
    size = n_groups * m
    agree = np.bincount(key[values == 1], minlength=size).reshape(n_groups, m)
    disagree = np.bincount(key[values == -1], minlength=size).reshape(n_groups, m)
    seen = np.bincount(key, minlength=size).reshape(n_groups, m)
    return agree, disagree, seen


# ---------------------------------------------------------------------------------------------------------
# Group-aware consensus


def gac_ccai(agree: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The CCAI paper's GAC: product over groups of agree / seen (passes in the denominator, no prior).

    A group that never saw the statement contributes 0 (no evidence of agreement).
    """
    share = np.divide(agree, seen, out=np.zeros(np.shape(agree)), where=np.asarray(seen) > 0)
    return share.prod(axis=0)


def gac_polis(agree: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Polis's group-informed consensus: product over groups of (agree + 1) / (seen + 2)."""
    return ((np.asarray(agree) + 1.0) / (np.asarray(seen) + 2.0)).prod(axis=0)


def gac_pass_excluded(agree: np.ndarray, disagree: np.ndarray) -> np.ndarray:
    """Like the paper's GAC but over agree + disagree only, so a pass neither helps nor hurts.

    A group with no agree or disagree vote contributes 0.
    """
    decided = np.asarray(agree) + np.asarray(disagree)
    share = np.divide(agree, decided, out=np.zeros(np.shape(agree)), where=decided > 0)
    return share.prod(axis=0)


def gac_jeffreys(agree: np.ndarray, disagree: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Jeffreys-prior GAC: per group P_a (1 - P_d), P = (count + 1/2) / (seen + 1); geometric mean.

    The prior pulls rarely seen statements to the middle; the geometric mean keeps the scale the same for
    2 or 5 groups.
    """
    agree, disagree, seen = (np.asarray(a, float) for a in (agree, disagree, seen))
    p_agree = (agree + 0.5) / (seen + 1.0)
    p_disagree = (disagree + 0.5) / (seen + 1.0)
    effective = p_agree * (1.0 - p_disagree)
    return np.exp(np.log(effective).mean(axis=0))


def gac_disagree(disagree: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Group-aware consensus on disagreement (red-dwarf has it): product over groups of
    (disagree + 1) / (seen + 2), Polis's form with the agree count swapped for the disagree count. High only
    where every group rejects the statement: the "broad disagreement" a report lists."""
    return ((np.asarray(disagree) + 1.0) / (np.asarray(seen) + 2.0)).prod(axis=0)


GAC_VARIANTS = ("gac", "gac_polis", "gac_pass_excluded", "gac_jeffreys")
GAC_ALIASES = {
    "ccai": "gac",
    "gac_ccai": "gac",
    "paper": "gac",
    "polis": "gac_polis",
    "pass_excluded": "gac_pass_excluded",
    "jeffreys": "gac_jeffreys",
}


def gac_variant_name(variant: str) -> str:
    """The column name of a GAC variant, accepting short aliases ('ccai', 'polis', 'jeffreys'...)."""
    name = GAC_ALIASES.get(variant, variant)
    if name not in GAC_VARIANTS:
        raise ValueError(f"unknown GAC variant {variant!r}; expected one of {', '.join(GAC_VARIANTS)}")
    return name


# ---------------------------------------------------------------------------------------------------------
# Polarization


def polarization(agree: np.ndarray, disagree: np.ndarray, seen: np.ndarray) -> dict[str, np.ndarray]:
    """PI = 1 - |a/n - d/n| (n = seen, passes included), its pass-excluded form, and the "adjusted" PI.

    ``pi_adjusted`` = PI * (agree + disagree) / n is inferred, not read in the CCAI paper: it is the
    definition that reproduces the paper's "adjusted" median of 0.23. Unseen statements get NaN.
    """
    agree, disagree, seen = (np.asarray(a, float) for a in (agree, disagree, seen))
    decided = agree + disagree
    with np.errstate(invalid="ignore", divide="ignore"):
        pi = np.where(seen > 0, 1.0 - np.abs(agree - disagree) / seen, np.nan)
        pi_excl = np.where(decided > 0, 1.0 - np.abs(agree - disagree) / decided, np.nan)
        adjusted = np.where(seen > 0, pi * decided / seen, np.nan)
    return {"pi": pi, "pi_excl_pass": pi_excl, "pi_adjusted": adjusted}


# ---------------------------------------------------------------------------------------------------------
# Representativeness (Polis's repness)


def prop_test(successes: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """Polis's one-proportion z-score with a pseudocount inside: 2 sqrt(n + 1) ((s + 1) / (n + 1) - 1/2)."""
    successes, trials = np.asarray(successes, float), np.asarray(trials, float)
    return 2.0 * np.sqrt(trials + 1.0) * ((successes + 1.0) / (trials + 1.0) - 0.5)


def two_prop_test(
    succ_in: np.ndarray, n_in: np.ndarray, succ_out: np.ndarray, n_out: np.ndarray
) -> np.ndarray:
    """Two-proportion z-score with +1 on all four inputs (0 where the pooled proportion is 1)."""
    a, m = np.asarray(succ_in, float) + 1.0, np.asarray(n_in, float) + 1.0
    b, mm = np.asarray(succ_out, float) + 1.0, np.asarray(n_out, float) + 1.0
    pooled = (a + b) / (m + mm)
    var = pooled * (1.0 - pooled) * (1.0 / m + 1.0 / mm)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (a / m - b / mm) / np.sqrt(var)
    return np.where((pooled >= 1.0) | (var <= 0), 0.0, z)


def repness_stats(agree: np.ndarray, disagree: np.ndarray, seen: np.ndarray) -> dict[str, np.ndarray]:
    """Repness statistics of every statement for each group vs the rest, shaped (groups, statements)."""
    agree, disagree, seen = (np.asarray(a, float) for a in (agree, disagree, seen))
    rest_a, rest_d, rest_s = (x.sum(axis=0, keepdims=True) - x for x in (agree, disagree, seen))
    p_a = (agree + 1.0) / (seen + 2.0)
    p_d = (disagree + 1.0) / (seen + 2.0)
    return {
        "n_agree": agree,
        "n_disagree": disagree,
        "n_seen": seen,
        "p_agree": p_a,
        "p_disagree": p_d,
        "p_agree_test": prop_test(agree, seen),
        "p_disagree_test": prop_test(disagree, seen),
        "r_agree": p_a / ((rest_a + 1.0) / (rest_s + 2.0)),
        "r_disagree": p_d / ((rest_d + 1.0) / (rest_s + 2.0)),
        "r_agree_test": two_prop_test(agree, seen, rest_a, rest_s),
        "r_disagree_test": two_prop_test(disagree, seen, rest_d, rest_s),
    }


def _repness_row(stats: dict[str, np.ndarray], g: int, j: int, direction: str, best_agree: bool) -> dict:
    side = "agree" if direction == "agree" else "disagree"
    p, p_test = stats[f"p_{side}"][g, j], stats[f"p_{side}_test"][g, j]
    r, r_test = stats[f"r_{side}"][g, j], stats[f"r_{side}_test"][g, j]
    return {
        "group": g,
        "col": j,
        "direction": direction,
        "best_agree": best_agree,
        "n_success": int(stats[f"n_{side}"][g, j]),
        "n_trials": int(stats["n_seen"][g, j]),
        "p_success": p,
        "p_test": p_test,
        "repness": r,
        "repness_test": r_test,
        "metric": r * r_test * p * p_test,
    }


def select_repness(
    agree: np.ndarray,
    disagree: np.ndarray,
    seen: np.ndarray,
    eligible: np.ndarray,
    *,
    z: float = Z90,
    per_group: int = REPNESS_PER_GROUP,
) -> list[dict]:
    """Polis's representative statements per group (selection rules of its math worker).

    Per group: a statement is "sufficient" when both its within-group and group-vs-rest tests pass for one
    side (agree or disagree); a "best agree" statement is tracked as a fallback. The group gets the best-agree
    statement first, then the sufficient ones by metric = repness x repness-test x p x p-test, 5 in all,
    agrees before disagrees. Returns one dict per selected (group, statement); ``col`` is the column index.
    """
    stats = repness_stats(agree, disagree, seen)
    rows: list[dict] = []
    n_groups = stats["n_seen"].shape[0]
    cols = np.flatnonzero(eligible)
    for g in range(n_groups):
        pa, pat = stats["p_agree"][g], stats["p_agree_test"][g]
        ra, rat = stats["r_agree"][g], stats["r_agree_test"][g]
        pdt, rdt = stats["p_disagree_test"][g], stats["r_disagree_test"][g]
        sufficient = [j for j in cols if (rat[j] > z and pat[j] > z) or (rdt[j] > z and pdt[j] > z)]
        best = None
        for j in cols:
            if stats["n_agree"][g, j] == 0 and stats["n_disagree"][g, j] == 0:
                continue
            if best is not None and ra[best] > 1.0:
                if ra[j] * rat[j] * pa[j] * pat[j] > ra[best] * rat[best] * pa[best] * pat[best]:
                    best = j
            elif best is not None:
                if pa[j] * pat[j] > pa[best] * pat[best]:
                    best = j
            elif pat[j] > z or (ra[j] > 1.0 and pa[j] > 0.5):
                best = j
        if not sufficient:
            if best is not None:
                rows.append(_repness_row(stats, g, best, "agree", True))
            elif len(cols):
                j = cols[np.argmax(np.maximum(rat[cols], rdt[cols]))]
                rows.append(_repness_row(stats, g, j, "agree" if rat[j] > rdt[j] else "disagree", False))
            continue
        picked = [
            _repness_row(stats, g, j, "agree" if rat[j] > rdt[j] else "disagree", False)
            for j in sufficient
            if j != best
        ]
        picked.sort(key=lambda row: -row["metric"])
        if best is not None:
            picked.insert(0, _repness_row(stats, g, best, "agree", True))
        picked = picked[:per_group]
        picked.sort(key=lambda row: row["direction"] != "agree")  # stable: agrees first
        rows.extend(picked)
    return rows


# ---------------------------------------------------------------------------------------------------------
# Majority consensus, uncertainty, priority


def majority_consensus(
    agree: np.ndarray,
    disagree: np.ndarray,
    seen: np.ndarray,
    eligible: np.ndarray,
    *,
    z: float = Z90,
    per_side: int = CONSENSUS_PER_SIDE,
) -> dict[str, list[tuple[int, float]]]:
    """Polis's "majority" lists (not group-aware): statements with p > 1/2 and a significant one-proportion
    test, best ``per_side`` by p x test, for agree and for disagree. Returns (column, score) pairs."""
    out: dict[str, list[tuple[int, float]]] = {}
    for side, count in (("agree", agree), ("disagree", disagree)):
        p = (np.asarray(count, float) + 1.0) / (np.asarray(seen, float) + 2.0)
        test = prop_test(count, seen)
        ok = np.flatnonzero(eligible & (p > 0.5) & (test > z))
        score = p[ok] * test[ok]
        order = np.argsort(-score, kind="stable")[:per_side]
        out[side] = [(int(ok[i]), float(score[i])) for i in order]
    return out


def uncertainty(
    agree: np.ndarray,
    disagree: np.ndarray,
    seen: np.ndarray,
    eligible: np.ndarray,
    *,
    min_share: float = UNCERTAINTY_SHARE,
    top: int = UNCERTAINTY_TOP,
) -> list[tuple[int, float]]:
    """Polis report's "areas of uncertainty": pass share above 30 %, ranked by share^2 x passes."""
    seen = np.asarray(seen, float)
    passes = seen - np.asarray(agree) - np.asarray(disagree)
    share = np.divide(passes, seen, out=np.zeros_like(seen), where=seen > 0)
    ok = np.flatnonzero(eligible & (share > min_share))
    score = share[ok] ** 2 * passes[ok]
    order = np.argsort(-score, kind="stable")[:top]
    return [(int(ok[i]), float(score[i])) for i in order]


def comment_priority(
    agree: np.ndarray,
    disagree: np.ndarray,
    seen: np.ndarray,
    extremity: np.ndarray,
    is_meta: np.ndarray | None = None,
) -> np.ndarray:
    """Polis's routing weight for showing a statement next (higher = shown sooner).

    importance = (1 - (passes + 1) / (seen + 2)) * (extremity + 1) * (agree + 1) / (seen + 2);
    priority = (importance * (1 + 8 * 2^(-seen / 5)))^2, so new statements get a boost that fades after
    ~20 votes; meta statements get 7^2 = 49. Counts are the current ones (Polis uses the previous tick's).
    """
    agree, disagree, seen, extremity = (np.asarray(a, float) for a in (agree, disagree, seen, extremity))
    passes = seen - agree - disagree
    importance = (1.0 - (passes + 1.0) / (seen + 2.0)) * (extremity + 1.0) * (agree + 1.0) / (seen + 2.0)
    priority = (importance * (1.0 + 8.0 * 2.0 ** (-seen / 5.0))) ** 2
    if is_meta is not None:
        priority = np.where(np.asarray(is_meta, bool), META_PRIORITY**2, priority)
    return priority


def repness_frame(rows: list[dict], statement_ids: np.ndarray, group_names: list) -> pd.DataFrame:
    """The selected representative statements as a table with statement ids and group names."""
    columns = [
        "group",
        "statement_id",
        "direction",
        "best_agree",
        "n_success",
        "n_trials",
        "p_success",
        "p_test",
        "repness",
        "repness_test",
        "metric",
    ]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    frame["statement_id"] = statement_ids[frame.pop("col").to_numpy()]
    frame["group"] = [group_names[g] for g in frame["group"]]
    return frame[columns]
