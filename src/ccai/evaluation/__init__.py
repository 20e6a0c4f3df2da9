"""Stage 5: evaluate models the way the CCAI paper did (MMLU, GSM8K, BBQ, OpinionQA, pairwise Elo, refusals).

Front door: :func:`evaluate` (config + output folder -> :class:`EvalResult`, writing results.json,
report.html, per-sample records and the run manifest). Each benchmark is a
:class:`~ccai.evaluation.tasks.Task` in its own module; the scorers are plain functions, tested on
hand-made cases.
"""

from ccai.evaluation.config import ALL_TASKS, EvalConfig
from ccai.evaluation.runner import EvalResult, evaluate, parse_models

__all__ = ["ALL_TASKS", "EvalConfig", "EvalResult", "evaluate", "parse_models"]
