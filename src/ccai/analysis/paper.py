"""The CCAI paper's published figures, in one place (used by the demo, the report and the tests).

Source: Huang et al., "Collective Constitutional AI: Aligning a Language Model with Public Input"
(FAccT 2024, arXiv 2406.07814), computed by the organisers from the cleaned Pol.is export (saffronh/ccai).
``CCAI_REALIGNED`` holds the same figures recomputed with the organisers' labels put back on the right
participants (see docs/analysis.md: the published labels were written in the wrong order); they come from
the project's reference tables, not from the paper.
"""

from __future__ import annotations

#: The CCAI organisers' rule: keep statements whose GAC exceeds this (the one place the figure lives).
CCAI_THRESHOLD = 0.723

CCAI_PAPER: dict[str, float] = {
    "n_statements": 275,
    "n_participants": 1002,
    "group_0_size": 619,
    "group_1_size": 383,
    "gac_mean": 0.64,
    "gac_median": 0.70,
    "gac_min": 0.04,
    "gac_max": 0.96,
    "threshold": CCAI_THRESHOLD,
    "n_above_threshold": 116,
    "pi_median": 0.25,
    "pi_adjusted_median": 0.23,
}

CCAI_REALIGNED: dict[str, float] = {
    "gac_mean": 0.625,
    "gac_median": 0.692,
    "gac_min": 0.029,
    "gac_max": 0.943,
    "n_above_threshold": 113,
    "matched_share_vs_polis": 0.926,
}

# How the organisers cleaned the raw export (their notebook): more than 25 votes, minus ids-to-toss.csv,
# accepted statements only.
CCAI_ORGANISER_RULES: dict = {"more_than": 25, "moderation": "accepted"}


def paper_figures(result) -> dict[str, float]:
    """The paper's figures recomputed from an :class:`~ccai.analysis.result.AnalysisResult` (same keys)."""
    stm = result.eligible_statements()
    sizes = list(result.group_sizes().values())
    gac = result.gac_summary("gac")
    return {
        "n_statements": len(stm),
        "n_participants": int(result.participants["in_analysis"].sum()),
        "group_0_size": sizes[0] if sizes else 0,
        "group_1_size": sizes[1] if len(sizes) > 1 else 0,
        "gac_mean": gac["mean"],
        "gac_median": gac["median"],
        "gac_min": gac["min"],
        "gac_max": gac["max"],
        "threshold": CCAI_PAPER["threshold"],
        "n_above_threshold": int((stm["gac"] > CCAI_PAPER["threshold"]).sum()),
        "pi_median": float(stm["pi"].median()),
        "pi_adjusted_median": float(stm["pi_adjusted"].median()),
    }


def paper_table(result, reference: dict[str, float] | None = None):
    """Side-by-side table (figure, paper, recomputed) as a pandas DataFrame."""
    import pandas as pd

    reference = CCAI_PAPER if reference is None else reference
    mine = paper_figures(result)
    return pd.DataFrame(
        [
            {"figure": key, "paper": value, "recomputed": mine.get(key)}
            for key, value in reference.items()
            if key in mine
        ]
    )
