"""Run bookkeeping: the run directory, resumable steps, metrics JSONL, trainer settings, model cards.

A training run directory::

    <run>/config.yaml manifest.json log.jsonl   (ccai.manifest.RunDir: resolved config, hashes, versions)
    <run>/state.json                              steps finished so far (what --resume skips)
    <run>/metrics.jsonl                           every trainer log line: {"stage", "step", "epoch", ...}
    <run>/data/sl_cai.jsonl, data/rl_pairs.jsonl  the data sets (ccai.formats.hf contract)
    <run>/sl/checkpoints, sl/model                SFT checkpoints and the SL-CAI model (HF folder + card)
    <run>/pm/model                                the preference model
    <run>/rl/checkpoints, rl/model                the RL-CAI model (HF folder + card)

Resuming: every step writes its output whole and then records itself in ``state.json``; generation is
chunked with a seed per chunk, and trainers resume from their latest checkpoint (HF restores optimiser,
scheduler, RNG and data order), so an interrupted run ends in the same state as an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ccai.files import atomic_write_text, cached_dir
from ccai.manifest import RunDir, _plain, package_versions
from ccai.training.distributed import SINGLE, Ranks, map_chunks, on_main

# peft and TRL (pinned) still read transformers' old `model.is_gradient_checkpointing` name, and transformers
# warns on every read. The warning is about those libraries' code, not the user's config, and a user can do
# nothing about it, so it is silenced by its exact text; any other FutureWarning still shows.
warnings.filterwarnings(
    "ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning
)


class TrainingRun:
    """A run directory being filled step by step.

    ``writer``: whether this process writes the run's files. In a launched multi-process run only process 0
    does; the others keep the same ``state`` in memory (every process marks the same steps) and read what
    process 0 wrote after the step that writes it is over (see :mod:`ccai.training.distributed`).
    """

    def __init__(self, run: RunDir, *, writer: bool = True) -> None:
        self.run = run
        self.path = run.path
        self.writer = writer
        self.state_path = self.path / "state.json"
        self.state: dict[str, Any] = (
            json.loads(self.state_path.read_text()) if self.state_path.is_file() else {"done": {}}
        )

    @classmethod
    def open(
        cls,
        path: Path | str,
        config: Mapping[str, Any],
        *,
        seed: int,
        inputs: list[Path],
        resume: bool,
        mutable: tuple[str, ...] = (),
        ranks: Ranks = SINGLE,
    ) -> TrainingRun:
        """Start a new run in ``path`` or, with ``resume``, continue one with the same config.

        Top-level config sections named in ``mutable`` (``rl`` for ``ccai train rl``) may change on resume
        as long as none of their steps has run yet; the stored config is then updated. In a launched run
        process 0 opens (and checks) the folder; the others then read its state without writing.
        """
        if ranks.distributed:
            opened: list[TrainingRun] = []
            kwargs = {"seed": seed, "inputs": inputs, "resume": resume, "mutable": mutable}
            on_main(lambda: opened.append(cls.open(path, config, **kwargs)), ranks)
            return opened[0] if ranks.main else cls(RunDir(Path(path)), writer=False)
        path = Path(path)
        config_file = path / "config.yaml"
        if config_file.is_file():
            if not resume:
                raise FileExistsError(
                    f"{path}: a run already exists here; pass --resume to continue it or choose another --out"
                )
            previous = yaml.safe_load(config_file.read_text())
            current = _plain(dict(config))
            changed = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
            run = cls(RunDir(path))
            started = [s for s in run.state["done"] if s.startswith(("rl_", "pm_")) and "rl" in mutable]
            if changed and (set(changed) - set(mutable) or started):
                raise ValueError(
                    f"{path}: cannot resume, the config differs from the stored one in {changed}"
                    + (f" and steps {started} already ran" if started else "")
                )
            if changed:
                config_file.write_text(yaml.safe_dump(current, sort_keys=False))
                run.run.log("config_changed", keys=changed)
                run.discard_rl()  # leftovers of an earlier RL attempt would no longer match the config
            run.run.log("resumed", done=sorted(run.state["done"]))
            return run
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(f"{path}: folder is not empty and holds no ccai run; choose another --out")
        return cls(RunDir.create(path, config, seed=seed, inputs=inputs, stage="training"))

    def discard_rl(self) -> None:
        """Forget every RL-CAI output (pairs, labels, checkpoints, models) so RL starts afresh."""
        for folder in ("pm", "rl"):
            shutil.rmtree(self.path / folder, ignore_errors=True)
        for name in ("rl_samples.jsonl", "rl_pairs.jsonl"):
            (self.path / "data" / name).unlink(missing_ok=True)
        for step in ("rl_pairs", "rl_labels", "pm_train", "rl_train"):
            self.state["done"].pop(step, None)
        self.state.get("chunks", {}).pop("rl_pairs", None)
        self.save_state()

    # -- steps ------------------------------------------------------------------------------------
    def done(self, step: str) -> bool:
        return step in self.state["done"]

    def result(self, step: str) -> dict[str, Any]:
        return self.state["done"][step]

    def mark(self, step: str, **info: Any) -> None:
        self.state["done"][step] = _plain(info)
        self.save_state()
        if self.writer:
            self.run.log(f"{step}_done", **info)

    def save_state(self) -> None:
        if self.writer:
            atomic_write_text(self.state_path, json.dumps(_plain(self.state), indent=2))

    # -- metrics ----------------------------------------------------------------------------------
    def metrics_callback(self, stage: str) -> Any:
        from transformers import TrainerCallback

        metrics_path = self.path / "metrics.jsonl"
        writer = self.writer

        class _Metrics(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
                if logs and writer and state.is_world_process_zero:
                    record = {"stage": stage, "step": state.global_step, "epoch": state.epoch, **logs}
                    with open(metrics_path, "a") as handle:
                        handle.write(json.dumps(_plain(record)) + "\n")

        return _Metrics()

    def prune_metrics(self, stage: str, after_step: int) -> None:
        """Drop a stage's metrics logged after ``after_step`` (they are logged again on resume)."""
        path = self.path / "metrics.jsonl"
        if not path.is_file() or not self.writer:
            return
        kept = [
            line
            for line in path.read_text().splitlines()
            if line.strip()
            and not (json.loads(line).get("stage") == stage and json.loads(line).get("step", 0) > after_step)
        ]
        path.write_text("".join(line + "\n" for line in kept))

    def metrics(self, stage: str | None = None) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl"
        if not path.is_file():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [r for r in rows if stage is None or r.get("stage") == stage]


def latest_checkpoint(folder: Path) -> Path | None:
    """The ``checkpoint-N`` sub-folder with the largest N that holds a trainer state, or None."""
    if not folder.is_dir():
        return None
    found = [
        (int(p.name.split("-")[1]), p)
        for p in folder.glob("checkpoint-*")
        if p.name.split("-")[1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(found)[1] if found else None


def checkpoint_step(checkpoint: Path | None) -> int:
    return int(checkpoint.name.split("-")[1]) if checkpoint else 0


def use_bf16(setting: str | bool, device: str) -> bool:
    """bf16 autocast only where the hardware has it: CPU flags avx512_bf16/amx_bf16, or a bf16 GPU."""
    if setting != "auto":
        return bool(setting)
    if device.startswith("cuda"):
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    from ccai.models.prepare import cpu_supports_bf16

    return cpu_supports_bf16()


def trainer_kwargs(
    optim: Any, out_dir: Path, *, seed: int, bf16: bool, device: str, group_by_length: bool = False
) -> dict[str, Any]:
    """TrainingArguments every trainer shares (TRL's CPU traps handled: bf16, report_to, checkpointing).

    ``group_by_length``: batches of similar length (seeded), for data sets with input ids or a ``length``
    column. Random batches of CAI rows are 15-20 % padding, which a CPU computes like any other token.
    """
    grouping = {"train_sampling_strategy": "group_by_length", "length_column_name": "length"}
    return {
        **(grouping if group_by_length else {}),
        "output_dir": str(out_dir),
        "seed": seed,
        "data_seed": seed,
        "learning_rate": optim.learning_rate,
        "num_train_epochs": optim.epochs,
        "per_device_train_batch_size": optim.batch_size,
        "gradient_accumulation_steps": optim.grad_accum,
        "per_device_eval_batch_size": optim.batch_size,
        "warmup_steps": optim.warmup_ratio,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": optim.save_steps,
        "save_total_limit": 2,
        "report_to": "none",
        "use_cpu": device == "cpu",
        "bf16": bf16,
        "activation_checkpointing": False,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        # under a launcher (DDP): every trainable weight takes part in each forward pass, so DDP need not
        # walk the graph looking for unused ones (HF's default when activation checkpointing is off)
        "ddp_find_unused_parameters": False,
    }


def lora_config(optim: Any, task_type: str = "CAUSAL_LM") -> Any:
    if not optim.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=optim.lora_r,
        lora_alpha=optim.lora_alpha,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type=task_type,
    )


def save_model(model: Any, tokenizer: Any, out_dir: Path) -> Path:
    """Save a plain HF folder: LoRA adapters are merged in, so the folder loads like any base model."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.config._name_or_path = ""

    def build(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return cached_dir(out_dir, build, lambda folder: (folder / "config.json").is_file(), force=True)


def write_model_card(
    model_dir: Path,
    *,
    title: str,
    base_model: str,
    constitution: Any,
    constitution_path: str,
    stage: str,
    data_counts: Mapping[str, int],
    settings: Mapping[str, Any],
    results: Mapping[str, Any],
) -> Path:
    """README.md with Hub-style front matter and what a reader needs to trust the model."""
    meta = constitution.metadata
    origin = meta.get("origin") or meta.get("source") or constitution.description or constitution_path
    if isinstance(meta.get("consultation"), Mapping | str):
        origin = f"{origin} (consultation: {meta['consultation']})"
    front = {
        "base_model": base_model,
        "library_name": "transformers",
        "license": "apache-2.0",
        "tags": ["ccai", "constitutional-ai", "trl", stage],
        "ccai": {
            "constitution_name": constitution.name,
            "constitution_hash": constitution.content_hash,
            "principles": len(constitution.principles),
            "constitution_reviewed": constitution.is_reviewed,
        },
    }
    versions = package_versions(("torch", "transformers", "trl", "peft", "datasets", "ccai"))
    lines = [
        "---",
        yaml.safe_dump(_plain(front), sort_keys=False).strip(),
        "---",
        "",
        f"# {title}",
        "",
        f"Trained with ccai ({stage}) from `{base_model}` on the constitution **{constitution.name}** "
        f"(v{constitution.version}).",
        "",
        "## Constitution",
        "",
        f"- name: {constitution.name} (version {constitution.version})",
        f"- content hash: `{constitution.content_hash}`",
        f"- principles: {len(constitution.principles)}",
        f"- review: **{constitution.review_line()}**",
        f"- where it came from: {origin}",
        f"- file: `{constitution_path}`",
        "",
        "## Data",
        "",
        *[f"- {k}: {v}" for k, v in data_counts.items()],
        "",
        "## Training settings",
        "",
        "```yaml",
        yaml.safe_dump(_plain(dict(settings)), sort_keys=False).strip(),
        "```",
        "",
        "## Results of this run",
        "",
        *[f"- {k}: {v}" for k, v in results.items()],
        "",
        "## Evaluation",
        "",
        "Not evaluated yet: run `ccai eval` on this folder; its table belongs here.",
        "",
        "## Limitations",
        "",
        "A small model trained on a few hundred AI-written examples. At 135M parameters the critiques,",
        "revisions and A/B feedback labels are close to noise (see docs/training.md): such runs test the",
        "pipeline, they do not show that the model follows the constitution.",
        "",
        "## Framework versions",
        "",
        *[f"- {k}: {v}" for k, v in versions.items()],
        "",
    ]
    path = model_dir / "README.md"
    path.write_text("\n".join(lines))
    return path


def run_chunks(
    run: TrainingRun,
    step: str,
    items: list[Any],
    chunk_size: int,
    fn: Any,
    path: Path,
    kind: str,
    progress: Any = None,
    ranks: Ranks = SINGLE,
) -> list[dict[str, Any]]:
    """Apply ``fn(chunk, chunk_index) -> rows`` chunk by chunk, appending rows to ``path`` as it goes.

    After each chunk, the number of rows it wrote is recorded in ``state.json``; a resumed run keeps exactly
    the recorded rows (a chunk cut off half-way is dropped and redone with the same per-chunk seed). In a
    launched run the chunks are shared out among the processes (:func:`~ccai.training.distributed.map_chunks`)
    and process 0 writes them in order; every process returns all the rows.
    """
    from ccai.formats.hf import append_rows, read_rows, write_rows

    chunks = [items[k : k + chunk_size] for k in range(0, len(items), chunk_size)]
    counts: list[int] = run.state.setdefault("chunks", {}).setdefault(step, [])
    kept = sum(counts)
    rows = read_rows(path, kind)[:kept] if path.is_file() and kept else []
    if len(rows) != kept:
        raise ValueError(f"{path}: has {len(rows)} rows but state.json records {kept}; start a new run")
    ranks.barrier()  # every process has read the kept rows before process 0 rewrites the file
    if run.writer:
        write_rows(path, rows, kind)  # atomic: the kept rows replace the file in one rename
    if progress is not None:
        progress(sum(len(c) for c in chunks[: len(counts)]))
    for index, new in map_chunks(chunks, fn, ranks, start=len(counts)):
        if run.writer:
            append_rows(path, new, kind)
        counts.append(len(new))
        run.save_state()
        rows.extend(new)
        if progress is not None:
            progress(len(chunks[index]))
    ranks.barrier()  # the file is whole before any process reads it
    return rows


def step_progress(label: str) -> Any:
    """A trainer callback drawing one rich progress bar over the optimiser steps."""
    from transformers import TrainerCallback

    class _Bar(TrainerCallback):
        def __init__(self) -> None:
            self.progress: Any = None

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[loss]}"),
                TimeElapsedColumn(),
            )
            self.task = self.progress.add_task(
                label, total=state.max_steps, completed=state.global_step, loss=""
            )
            self.progress.start()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if self.progress is not None and logs and "loss" in logs:
                self.progress.update(self.task, loss=f"loss {float(logs['loss']):.4f}")

        def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if self.progress is not None:
                self.progress.stop()
                self.progress = None

    return _Bar()


def quiet(trainer: Any) -> Any:
    """Remove the trainer's own stdout printer (metrics go to metrics.jsonl and the rich bar instead)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer
