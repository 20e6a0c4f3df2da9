"""How well two groupings of the same participants agree.

A grouping handed to ccai (the organisers' labels, an earlier run) can be silently wrong: the CCAI
organisers' published labels sit on the wrong participants. Comparing every labeling with every other one,
over the participants both label, catches that: the adjusted Rand index (ARI) is ~0 for unrelated labels and 1
for identical partitions, and the matched share says what fraction of participants carry corresponding labels
under the best one-to-one matching of group names.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

# scipy.optimize and scikit-learn are imported where used: together they cost about half a second of a
# whole `ccai analyze` run, and a run without a second labeling never needs them.


def matched_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of items whose labels correspond under the best one-to-one matching of label names."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)
    if table.shape[0] > table.shape[1]:
        table = table.T
    if table.shape[1] <= 7:
        # Opinion groupings have 2-5 groups: every one-to-one matching is at most 7!/2 = 2,520 sums,
        # faster than importing scipy.optimize (~0.2 s, a tenth of a whole run).
        from itertools import permutations

        rows = np.arange(table.shape[0])
        best = max(table[rows, list(cols)].sum() for cols in permutations(range(table.shape[1]), len(rows)))
        return float(best / len(a))
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(a))


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Hubert and Arabie's adjusted Rand index from the contingency table (pair counts), equal to
    scikit-learn's ``adjusted_rand_score`` (tested) without importing scikit-learn (~0.4 s)."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    n = len(ai)
    table = np.bincount(ai * (bi.max() + 1) + bi, minlength=(ai.max() + 1) * (bi.max() + 1)).astype(float)

    def pairs(x):
        return float((x * (x - 1) / 2).sum())

    both = pairs(table)
    rows = pairs(np.bincount(ai).astype(float))
    cols = pairs(np.bincount(bi).astype(float))
    total = n * (n - 1) / 2
    expected = rows * cols / total if total else 0.0
    top = (rows + cols) / 2
    if top == expected:  # both labelings are one cluster each, or all singletons: identical partitions
        return 1.0
    return float((both - expected) / (top - expected))


def compare_labelings(labelings: dict[str, pd.Series]) -> pd.DataFrame:
    """ARI and matched share for every pair of labelings (Series indexed by participant; NA = unlabelled)."""
    records = []
    for (name_a, a), (name_b, b) in combinations(labelings.items(), 2):
        both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
        n = len(both)
        ari = (
            adjusted_rand(both["a"].astype(str).to_numpy(), both["b"].astype(str).to_numpy())
            if n
            else float("nan")
        )
        share = (
            matched_share(both["a"].astype(str).to_numpy(), both["b"].astype(str).to_numpy())
            if n
            else float("nan")
        )
        records.append(
            {
                "a": name_a,
                "b": name_b,
                "n_common": n,
                "ari": float(ari),
                "matched_share": share,
                "k_a": int(a.dropna().nunique()),
                "k_b": int(b.dropna().nunique()),
            }
        )
    return pd.DataFrame(records, columns=["a", "b", "n_common", "ari", "matched_share", "k_a", "k_b"])
