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
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score


def matched_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of items whose labels correspond under the best one-to-one matching of label names."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(a))


def compare_labelings(labelings: dict[str, pd.Series]) -> pd.DataFrame:
    """ARI and matched share for every pair of labelings (Series indexed by participant; NA = unlabelled)."""
    records = []
    for (name_a, a), (name_b, b) in combinations(labelings.items(), 2):
        both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
        n = len(both)
        ari = adjusted_rand_score(both["a"].astype(str), both["b"].astype(str)) if n else float("nan")
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
