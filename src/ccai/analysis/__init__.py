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

from ccai.analysis.consensus import GAC_VARIANTS, comment_priority
from ccai.analysis.paper import CCAI_PAPER, CCAI_REALIGNED
from ccai.analysis.pipeline import OpinionAnalysis, analyze
from ccai.analysis.result import AnalysisResult
from ccai.analysis.selection import select_by_gac, threshold_for_count

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
