"""SL-CAI rows kept by the quality gates against the generation budget, dropping or trimming cut-off targets.

The demo's workload (SmolLM2-135M, standard constitution, 16 red-team + 4 helpful prompts, 1 revision, seed 0,
critiques at 48 tokens): for each target budget, the SL-CAI data of one chunk is generated once and gated
twice, with ``sl.quality.trim_truncated`` off and on (the same replies replayed, so the difference is the
gate alone). Printed per budget: generation CPU seconds, tokens, SFT rows kept, trimmed rows and the reasons.
CPU seconds (one thread) are the measure to compare on a shared machine; wall seconds are printed too.

    PYTHONPATH=src nice python bench/sl_budget.py              # budgets 48 and 96
    PYTHONPATH=src nice python bench/sl_budget.py 48 64 128
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Replay:
    """The first call with given arguments generates; a repeat gets the same replies back."""

    def __init__(self, backend) -> None:  # noqa: ANN001
        self.backend = backend
        self.replies: dict[str, list] = {}

    def generate_with_info(self, messages, **kwargs):  # noqa: ANN001
        key = json.dumps([messages, kwargs], sort_keys=True)
        if key not in self.replies:
            self.replies[key] = self.backend.generate_with_info(messages, **kwargs)
        return self.replies[key]


def main(budgets: list[int]) -> None:
    import torch

    from ccai.constitution import Constitution
    from ccai.models.backends import TransformersBackend
    from ccai.models.prepare import resolve_model
    from ccai.training.config import DataConfig, SLConfig
    from ccai.training.data import split_prompts
    from ccai.training.sl_cai import generate_chunk, quality_counts

    torch.set_num_threads(1)
    split = split_prompts(DataConfig(red_team_prompts=16, helpful_prompts=4), 0)
    prompts = [*split.red_team, *split.helpful]
    constitution = Constitution.load("src/ccai/constitution/standard.json")
    backend = TransformersBackend(resolve_model("smollm2"), batch_size=32)
    for budget in budgets:
        replay = Replay(backend)
        for trim in (False, True):
            config = SLConfig.model_validate(
                {
                    "revisions": 1,
                    "generation": {"max_new_tokens": budget},
                    "critique_max_new_tokens": 48,
                    "quality": {"trim_truncated": trim},
                }
            )
            tokens, wall, cpu = backend.tokens_generated, time.time(), time.process_time()
            rows = generate_chunk(replay, prompts, constitution, config, seed=0, chunk=0)
            report = {
                "budget": budget,
                "cut_off_targets": "trimmed" if trim else "dropped",
                "cpu_s": round(time.process_time() - cpu, 1),
                "wall_s": round(time.time() - wall, 1),
                "tokens": backend.tokens_generated - tokens,
                **quality_counts(rows),
            }
            print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main([int(b) for b in sys.argv[1:]] or [48, 96])
