"""Stage 2, opinion analysis: who agrees with whom, and what do opinion groups agree on?

Front door::

    from ccai.analysis import analyze, select_by_gac
    result = analyze(votes, statements)          # votes: participant, statement, vote (+1/-1/0)
    result.statements[["text", "gac", "gac_polis", "pi"]]
    select_by_gac(result, 0.723)                 # the CCAI organisers' selection rule
    result.to_dir("out/")                        # statements.csv, participants.csv, summary.json
    certify(result, threshold=0.723)             # ccai.analysis.robustness: p_selected, brigade_margin

Modules: ``matrix`` (vote matrix, filters), ``groups`` (PCA, projection, clustering), ``consensus``
(GAC variants, PI, repness, majority, uncertainty, priority), ``agreement`` (ARI between labelings),
``result`` (AnalysisResult), ``selection``, ``paper`` (the CCAI paper's figures), ``pipeline``,
``robustness`` (selection certificates, brigading margins), ``topics`` (MiniLM topics, checked LM
summaries), ``plots`` and ``report`` (report.html; imported only when a report is written).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ccai.analysis.consensus import GAC_VARIANTS, comment_priority
    from ccai.analysis.paper import CCAI_PAPER, CCAI_REALIGNED
    from ccai.analysis.pipeline import OpinionAnalysis, analyze
    from ccai.analysis.result import AnalysisResult
    from ccai.analysis.selection import select_by_gac, threshold_for_count

# The front door's names load on first use (PEP 562): importing a light submodule such as
# ``ccai.analysis.paper`` (the CLI does, for a default) must not import pandas and the whole pipeline.
_WHERE = {
    "GAC_VARIANTS": "consensus",
    "comment_priority": "consensus",
    "CCAI_PAPER": "paper",
    "CCAI_REALIGNED": "paper",
    "OpinionAnalysis": "pipeline",
    "analyze": "pipeline",
    "AnalysisResult": "result",
    "select_by_gac": "selection",
    "threshold_for_count": "selection",
}

__all__ = [
    "CCAI_PAPER",
    "CCAI_REALIGNED",
    "GAC_VARIANTS",
    "AnalysisResult",
    "OpinionAnalysis",
    "analyze",
    "comment_priority",
    "select_by_gac",
    "threshold_for_count",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ccai.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ccai.analysis.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
