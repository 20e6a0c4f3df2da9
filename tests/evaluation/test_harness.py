"""Our MMLU and GSM8K numbers agree with lm-evaluation-harness on the same model and items (to 1 point).

Kept small for CI; `python -m ccai.evaluation.harness_check smollm2 --mmlu 57 --gsm8k 10` runs a larger check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.usefixtures("shared_data")]


def test_mmlu_and_gsm8k_agree_with_the_harness_on_smollm2(tmp_path: Path) -> None:
    pytest.importorskip("lm_eval", reason="lm-eval is in the 'eval' extra")
    import torch

    from ccai.evaluation.harness_check import compare_with_harness
    from ccai.models.prepare import prepare_smollm2

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the CI machine is small and shared: oversubscribed threads crawl
    try:
        report = compare_with_harness(
            prepare_smollm2(), tmp_path, mmlu_limit=6, gsm8k_limit=3, seed=0, max_new_tokens=48
        )
    finally:
        torch.set_num_threads(threads)
    mmlu, gsm8k = report["mmlu"], report["gsm8k"]
    assert mmlu["n"] == 6 and gsm8k["n"] == 3
    assert abs(mmlu["ours"] - mmlu["harness"]) <= 1.0, report
    assert mmlu["same_prediction"] == mmlu["n"], report
    assert abs(gsm8k["ours_strict"] - gsm8k["harness_strict"]) <= 1.0, report
    assert abs(gsm8k["ours"] - gsm8k["harness_flexible"]) <= 1.0, report
    assert gsm8k["same_text"] == gsm8k["n"], report
