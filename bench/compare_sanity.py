"""Sanity figures for `ccai constitution compare` (docs/constitution.md, "Comparing"): the CAI paper's 16
principles and the reviewed CCAI public constitution, each against our standard, matched with one embedding
per principle (before) and clause by clause (now), with every clause pair that matched, for reading.

    PYTHONPATH=src CCAI_DATA_DIR=/work/shared/data nice python bench/compare_sanity.py OUT_DIR
"""

import sys
from pathlib import Path

from ccai.constitution import from_cai_paper
from ccai.constitution.compare import Comparison, compare, principle_vectors
from ccai.constitution.dedup import cosine_matrix, default_embedder
from ccai.constitution.standard import standard_constitution
from ccai.constitution.study import reproduce_ccai
from ccai.datasets import dataset_path

emb = default_embedder()
std = standard_constitution()
cai = from_cai_paper(dataset_path("ccai", "cai_paper_prompts"))
_, result, _ = reproduce_ccai(Path(sys.argv[1]), emb)
public = result.constitution


def old(a, b):
    return Comparison(a, b, cosine_matrix(principle_vectors(a, emb), principle_vectors(b, emb)), 0.6)


for name, a in [("CAI paper", cai), ("CCAI public reviewed", public)]:
    for label, c in [("before", old(a, std)), ("after", compare(a, std, emb))]:
        curve = c.coverage_curve()
        print(
            f"{name} ({len(a)}) {label}: pairs {len(c.matched_pairs())}, A covered {c.a_covered:.1%}, "
            f"std covered {c.b_covered:.1%}, curve " + " / ".join(f"{v:.1%}" for v in curve.values())
        )
        if label == "after":
            for x, y, s, ca, cb in c.matched_clauses():
                print(f"   {x} ~ {y} {s:.3f}: {ca!r} <-> {cb!r}")
