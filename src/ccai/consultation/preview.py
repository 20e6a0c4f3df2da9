"""The live constitution preview: which statements pass the consensus threshold now, and the principles the
constitution stage would make of them.

Computed in the report job (``jobs.py``) from the same analysis as the report, through the constitution
stage's own code: the analysis's ``statements.csv`` table read by ``constitution.select.read_statements``,
then ``constitution.build.build_constitution`` at the CCAI threshold (GAC >= 0.723). So the preview is what
``ccai constitution build`` would give on an export taken now, except for a person's review of merges. Each
change of the principles' content hash bumps the preview's version, so an organiser can see it move as votes
arrive.

Near-duplicate merging needs the bundled MiniLM; where the app runs without it (``near_duplicates=False``,
the tests) the preview uses an embedder that knows only identical texts, so nothing is merged, and says so.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from ccai.analysis.paper import CCAI_THRESHOLD


def _identity_embedder(texts) -> np.ndarray:
    """Unit vectors fixed by each text's digest: equal texts coincide, different ones are near-orthogonal."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(str(text).encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(384)
        rows.append(vector / np.linalg.norm(vector))
    return np.array(rows, np.float32).reshape(len(rows), 384)


def constitution_preview(result, merge: bool = False, previous: dict | None = None) -> dict:
    """The preview of analysis ``result``: threshold, principles (comparison form, source statements with
    their GAC), content hash and version (``previous``'s, plus one when the principles changed)."""
    from ccai.constitution.build import build_constitution
    from ccai.constitution.select import read_statements

    embedder = None
    if merge:
        from ccai.constitution.dedup import default_embedder

        embedder = default_embedder()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "statements.csv"
        result.statements_csv().to_csv(path, index=False)
        table = read_statements(path)
    preview = {"threshold": CCAI_THRESHOLD, "merged": merge, "principles": [], "hash": "", "note": ""}
    try:
        built = build_constitution(
            table, threshold=CCAI_THRESHOLD, embedder=embedder or _identity_embedder, name="live-preview"
        )
    except ValueError as exc:  # nothing passes the threshold yet
        preview["note"] = str(exc).split(":")[0]
    else:
        preview["hash"] = built.constitution.content_hash
        for principle in built.constitution.principles:
            sources = [s for s in principle.sources if getattr(s, "kind", "") == "statement"]
            preview["principles"].append(
                {
                    "comparison": principle.comparison,
                    "sources": [{"id": s.id, "gac": s.gac} for s in sources],
                }
            )
    before = previous or {}
    changed = preview["hash"] != before.get("hash", "")
    preview["version"] = int(before.get("version", 0)) + (1 if changed else 0)
    return preview
