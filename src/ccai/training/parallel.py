"""Several training runs side by side: how many at once, each run's share of the cores, one progress view.

Why: a 135M-parameter model does not keep two CPU threads fully busy. On a 2-core machine the 64-prompt
run of two constitutions took 14.2 min side by side against ~18.9 min one after the other with two threads
(docs/training.md; bench/side_by_side.py measures a small workload). So ``ccai train all`` on a CPU trains
its constitutions at the same time, each in its own process with ``cores // jobs`` threads, as far as memory
allows (a SmolLM2 run peaked at 4.6 GB). On a GPU one run at a time is the default: they would share it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from ccai.training.config import TrainingConfig
from ccai.training.train import STEPS, TrainingResult, train

#: Peak resident memory of one SmolLM2-135M run (DPO with LoRA is the largest step), rounded up.
RUN_MEMORY_BYTES = 6 * 1024**3

#: What the progress view calls each step of a run, in the order ``train`` runs them.
STEP_LABELS = dict(
    zip(
        ("split", *STEPS),
        (
            "prompts",
            "SL-CAI data",
            "SL-CAI fine-tuning",
            "two samples per prompt",
            "AI feedback",
            "preference model",
            "policy optimisation",
        ),
        strict=True,
    )
)


def run_names(constitution_paths: Sequence[Path | str]) -> list[str]:
    """Each run's folder name: its constitution file's stem (``public.json`` -> ``public``), made unique.

    One rule for every entry (``ccai train all``, ``ccai study``): the name a user gave the file, not the
    display name inside it, so folders, evaluation labels and the study report agree.
    """
    names: list[str] = []
    for path in constitution_paths:
        stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(path).stem.lower()) or "run"
        names.append(stem if stem not in names else f"{stem}-{len(names)}")
    return names


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes, or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def plan_jobs(runs: int, device: str, jobs: int | None = None) -> int:
    """How many runs go at once: ``jobs`` when given, else one per run as far as cores and memory allow
    (CPU only; a GPU device trains one run at a time unless ``jobs`` says otherwise). Under a launcher
    (``accelerate launch``, ``torchrun``) the processes share each run, so runs go one after the other."""
    from ccai.training.distributed import launched

    if launched():
        if jobs is not None and jobs > 1:
            raise ValueError(
                f"--jobs {jobs}: under accelerate launch/torchrun the launched processes share each run; "
                "leave --jobs out (runs then go one after the other)"
            )
        return 1
    if jobs is not None:
        if jobs < 1:
            raise ValueError(f"--jobs: expected a whole number >= 1, got {jobs}")
        return min(jobs, runs)
    if not device.startswith("cpu"):
        return 1
    memory = available_memory()
    by_memory = runs if memory is None else max(1, memory // RUN_MEMORY_BYTES)
    return max(1, min(runs, cpu_count(), by_memory))


def threads_per_job(jobs: int) -> int:
    return max(1, cpu_count() // jobs)


def run_side_by_side(
    fn: Callable[..., Any],
    calls: Sequence[tuple[tuple, dict]],
    jobs: int,
    *,
    watch: Sequence[tuple[str, Path]] = (),
) -> list[Any]:
    """``fn(*args, **kwargs)`` for every call in ``jobs`` fresh processes; results in call order.

    Every call runs to its end even if another fails (each run is resumable, so finished work is kept);
    then the first error is raised again. ``watch`` = (name, run folder) pairs drawn as progress bars.
    """
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, *args, **kwargs) for args, kwargs in calls]
        if watch:
            _watch(futures, watch)
        errors: list[BaseException] = []
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the other runs end
                errors.append(exc)
    if errors:
        raise errors[0]
    return results


def run_status(run_dir: Path) -> tuple[int, str]:
    """(steps finished, what runs now) read from a run folder's ``state.json``."""
    import json

    try:
        state = json.loads((run_dir / "state.json").read_text())
    except (OSError, ValueError):
        return 0, "starting"
    done = state.get("done", {})
    pending = [step for step in STEP_LABELS if step not in done]
    if not pending:
        return len(STEP_LABELS), "done"
    chunks = len(state.get("chunks", {}).get(pending[0], []))
    detail = f" (chunk {chunks + 1})" if pending[0] in ("sl_data", "rl_pairs") else ""
    return len(STEP_LABELS) - len(pending), STEP_LABELS[pending[0]] + detail


def _watch(futures: list[Future], runs: Sequence[tuple[str, Path]], every: float = 1.0) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[now]}"),
        TimeElapsedColumn(),
    ) as progress:
        tasks = [progress.add_task(name, total=len(STEP_LABELS), now="starting") for name, _ in runs]
        while True:
            for task, future, (_, folder) in zip(tasks, futures, runs, strict=True):
                done, now = run_status(folder)
                if future.done() and future.exception() is not None:
                    now = "failed"
                progress.update(task, completed=done, now=now)
            if all(f.done() for f in futures):
                return
            time.sleep(every)


def train_many(
    config: TrainingConfig,
    constitution_paths: list[Path],
    out: Path | str,
    *,
    resume: bool = False,
    progress: bool = True,
    jobs: int | None = None,
) -> list[TrainingResult]:
    """One run per constitution in ``out/<constitution name>``: same base model, data, seeds and settings.

    ``jobs`` runs go side by side, each in its own process with its share of the cores (default on a CPU:
    all of them at once as far as cores and memory allow; see :mod:`ccai.training.parallel`). A run's thread
    count is part of its resolved config; a resumed run keeps the one it started with.
    """
    import yaml

    from ccai.models.prepare import resolve_model

    names = run_names(constitution_paths)
    folders = [Path(out) / name for name in names]
    jobs = plan_jobs(len(folders), config.device, jobs)
    if jobs == 1:
        return [
            train(config, path, folder, resume=resume, progress=progress)
            for path, folder in zip(constitution_paths, folders, strict=True)
        ]
    resolve_model(config.model)  # prepared once here, before any run process starts
    calls = []
    for path, folder in zip(constitution_paths, folders, strict=True):
        threads = config.threads or threads_per_job(jobs)
        stored = folder / "config.yaml"
        if resume and stored.is_file():
            threads = yaml.safe_load(stored.read_text()).get("threads")
        run_config = config.model_copy(update={"threads": threads})
        calls.append(((run_config, path, folder), {"resume": resume, "progress": False}))
    watch = list(zip(names, folders, strict=True)) if progress else []
    return run_side_by_side(train, calls, jobs, watch=watch)
