"""What the SL-CAI quality gates reject on real SmolLM2 data (16 red-team + 4 helpful prompts, 48 tokens,
one revision, seed 0, the standard constitution): the counts, then each red-team row's check, critique and
revision side by side so the reasons can be read, not just counted.

    PYTHONPATH=src nice python bench/quality_gates.py
"""

import json
import os
import time

os.environ["HF_HUB_OFFLINE"] = "1"
from ccai.constitution import Constitution
from ccai.models.backends import TransformersBackend
from ccai.models.prepare import resolve_model
from ccai.training.config import DataConfig, SLConfig
from ccai.training.data import split_prompts
from ccai.training.sl_cai import generate_chunk, quality_counts

split = split_prompts(DataConfig(red_team_prompts=16, helpful_prompts=4), 0)
c = Constitution.load("src/ccai/constitution/standard.json")
b = TransformersBackend(resolve_model("smollm2"), batch_size=32)
cfg = SLConfig.model_validate({"revisions": 1, "generation": {"max_new_tokens": 48}})
t = time.time()
rows = generate_chunk(b, [*split.red_team, *split.helpful], c, cfg, seed=0, chunk=0)
print(json.dumps({"seconds": round(time.time() - t), **quality_counts(rows)}, indent=1))
for r in rows[:16]:
    print(
        repr(r["revision_checks"]),
        "|",
        r["critiques"][0][:80].replace("\n", " "),
        "||",
        r["revisions"][0][:80].replace("\n", " "),
    )
