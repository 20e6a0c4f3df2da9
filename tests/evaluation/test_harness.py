"""Our MMLU, GSM8K (8-shot CoT) and BBQ numbers agree with lm-evaluation-harness on the same model and items.

Kept small for CI; `python -m ccai.evaluation.harness_check smollm2 --mmlu 57 --gsm8k 10` runs a larger check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.usefixtures("shared_data")]


def test_mmlu_gsm8k_and_bbq_agree_with_the_harness_on_smollm2(tmp_path: Path) -> None:
    pytest.importorskip("lm_eval", reason="lm-eval is in the 'eval' extra")
    import torch

    from ccai.evaluation.harness_check import compare_with_harness
    from ccai.models.prepare import prepare_smollm2

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the CI machine is small and shared: oversubscribed threads crawl
    try:
        report = compare_with_harness(
            prepare_smollm2(), tmp_path, mmlu_limit=6, gsm8k_limit=2, bbq_limit=18, seed=0, max_new_tokens=48
        )
    finally:
        torch.set_num_threads(threads)
    mmlu, gsm8k, bbq = report["mmlu"], report["gsm8k"], report["bbq"]
    assert mmlu["n"] == 6 and gsm8k["n"] == 2 and bbq["n"] == 18
    assert abs(mmlu["ours"] - mmlu["harness"]) <= 1.0, report
    assert mmlu["same_prediction"] == mmlu["n"], report
    assert abs(gsm8k["ours_strict"] - gsm8k["harness_strict"]) <= 1.0, report
    assert abs(gsm8k["ours"] - gsm8k["harness_flexible"]) <= 1.0, report
    assert gsm8k["same_text"] == gsm8k["n"], report
    # BBQ: the harness's own prompt, choices and bias aggregation vs our scoring and our formulas
    assert bbq["same_prediction"] == bbq["n"], report
    assert abs(bbq["ours_accuracy"] - bbq["harness_accuracy"]) <= 1.0, report
    assert abs(bbq["ours_bias_disambig"] - bbq["harness_bias_disambig"]) <= 1.0, report
    assert abs(bbq["ours_bias_ambig"] - bbq["harness_bias_ambig"]) <= 1.0, report
