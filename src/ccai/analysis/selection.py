"""Statement selection by GAC, the step the constitution stage builds on.

The CCAI organisers kept every statement whose GAC exceeded 0.723; a user who wants "about 60 principles"
needs the threshold that yields that many. Both helpers consider eligible statements only (moderated-out
and meta statements never enter a constitution).
"""

from __future__ import annotations

import pandas as pd

from ccai.analysis.consensus import gac_variant_name
from ccai.analysis.result import AnalysisResult


def select_by_gac(
    result: AnalysisResult, threshold: float, variant: str = "gac", min_certainty: float | None = None
) -> pd.DataFrame:
    """Eligible statements with GAC (``variant``) >= ``threshold``, highest first.

    ``min_certainty``: also require the selection certificate ``p_selected`` (the share of bootstrap
    resamples, re-clustered, in which the statement is selected; see ``ccai.analysis.robustness.certify``)
    to be at least this, so a statement that made the cut by the luck of who voted is left out.
    """
    column = gac_variant_name(variant)
    table = result.eligible_statements()
    chosen = table[table[column] >= threshold]
    if min_certainty is not None:
        if "p_selected" not in table.columns:
            raise ValueError(
                "min_certainty needs selection certificates: run "
                "ccai.analysis.robustness.certify(result, threshold=...) first "
                "(or ccai analyze --certificates 200)"
            )
        chosen = chosen[chosen["p_selected"] >= min_certainty]
    return chosen.sort_values(column, ascending=False, kind="stable")


def threshold_for_count(result: AnalysisResult, n: int, variant: str = "gac") -> float:
    """The largest t such that ``select_by_gac(result, t, variant)`` returns at least ``n`` statements.

    That is the n-th highest GAC; ties at the boundary can make the selection longer than ``n``.
    """
    column = gac_variant_name(variant)
    values = result.eligible_statements()[column].sort_values(ascending=False, kind="stable")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n > len(values):
        raise ValueError(f"asked for {n} statements but only {len(values)} eligible statements exist")
    return float(values.iloc[n - 1])
