"""The training stage's one entry, ``run(config, inputs, out)``, called by ``ccai train all`` and the study.

``inputs`` are constitution files; each gets its own run folder ``out/<file stem>`` (same base model,
prompts, seeds and settings), and ``out`` itself holds the stage's ``config.yaml`` / ``manifest.json`` /
``log.jsonl`` and ``summary.json`` comparing the runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ccai.training.config import TrainingConfig
from ccai.training.train import TrainingResult


def run(
    config: TrainingConfig,
    inputs: Sequence[Path | str],
    out: Path | str,
    *,
    jobs: int | None = None,
    resume: bool = False,
    progress: bool = True,
) -> list[TrainingResult]:
    """Train one model per constitution in ``inputs``; ``jobs`` of them side by side (default: as many as
    cores and memory allow on a CPU, see :mod:`ccai.training.parallel`)."""
    from ccai.manifest import RunDir
    from ccai.training.distributed import current, on_main
    from ccai.training.parallel import train_many

    if not inputs:
        raise ValueError("--constitution: give at least one constitution file")
    out = Path(out)
    ranks = current(config.device)  # under a launcher process 0 writes the stage files
    stage = on_main(
        lambda: RunDir.create(
            out,
            {**config.model_dump(), "jobs": jobs},
            seed=config.seed,
            inputs=[Path(p) for p in inputs],
            stage="training",
        ),
        ranks,
    )
    results = train_many(config, [Path(p) for p in inputs], out, resume=resume, progress=progress, jobs=jobs)
    summary = {
        r.run_dir.name: {"run": str(r.run_dir), "model": str(r.final_model), **r.summary} for r in results
    }
    if ranks.main:
        stage.write_json("summary.json", summary)
        stage.log("trained", runs=sorted(summary))
        stage.finish(runs=sorted(summary))
    ranks.barrier()
    return results
