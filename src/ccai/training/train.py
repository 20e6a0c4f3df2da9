"""The training stage on one screen: constitution + config -> SL-CAI model -> RL-CAI model, in one run folder.

``train(config, constitution_path, out)`` runs every step in order, skipping those ``state.json`` marks as
done (so ``resume=True`` continues an interrupted run), and returns a :class:`TrainingResult` naming every
output. :func:`ccai.training.parallel.train_many` trains one model per constitution from the same config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ccai.config import dump_config
from ccai.training.config import TrainingConfig
from ccai.training.distributed import SINGLE, Ranks, on_main, process_device

STEPS = ("sl_data", "sl_train", "rl_pairs", "rl_labels", "pm_train", "rl_train")
#: What the model cards report of SL-CAI data, data-quality gate counts included.
SL_CARD_COUNTS = (
    "rows",
    "red_team",
    "helpful",
    "sft_rows",
    "sft_rows_trimmed",
    "rows_dropped",
    "revisions_rejected",
)


def _by_source(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Preference pairs per source (AI harmlessness labels, human helpfulness, revision pairs)."""
    counts: dict[str, int] = {}
    for row in rows:
        key = f"{row.get('source', 'ai_harmless')}_pairs"
        counts[key] = counts.get(key, 0) + 1
    return counts


@dataclass
class TrainingResult:
    run_dir: Path
    sl_model: Path | None = None
    pm_model: Path | None = None
    rl_model: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def final_model(self) -> Path | None:
        return self.rl_model or self.sl_model


def _load_constitution(path: Path) -> Any:
    from ccai.constitution import Constitution

    constitution = Constitution.load(path)
    if not constitution.principles:
        raise ValueError(f"{path}: the constitution has no principles; nothing to critique or judge with")
    return constitution


def _progress_factory(enabled: bool) -> Callable[[str, int], Any]:
    """A context manager yielding ``advance(n)``; rich progress bars when enabled."""
    from contextlib import contextmanager

    @contextmanager
    def bar(label: str, total: int):
        if not enabled:
            yield lambda n: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=False,
        ) as progress:
            task = progress.add_task(label, total=total)
            yield lambda n: progress.advance(task, n)

    return bar


def _with_threads(config: TrainingConfig, out: Path, resume: bool) -> TrainingConfig:
    """The torch thread count, fixed for the run and recorded in its ``config.yaml``.

    Why: float sums are reduced in a different order with a different number of threads, so a resumed run
    ends in bit-identical weights only with the thread count it started with. An unset count becomes torch's
    current one; on ``--resume`` the stored count wins.
    """
    if config.threads is not None:
        return config
    stored = out / "config.yaml"
    threads = yaml.safe_load(stored.read_text()).get("threads") if resume and stored.is_file() else None
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    return config.model_copy(update={"threads": threads})


def train(
    config: TrainingConfig,
    constitution_path: Path | str,
    out: Path | str,
    *,
    resume: bool = False,
    stages: tuple[str, ...] = ("sl", "rl"),
    progress: bool = True,
    callbacks: list[Any] | None = None,
) -> TrainingResult:
    """Run SL-CAI and/or RL-CAI for one constitution into the run folder ``out``."""
    from transformers.utils import logging as hf_logging

    from ccai.models.backends import make_backend
    from ccai.models.prepare import resolve_model
    from ccai.training.data import split_prompts
    from ccai.training.distributed import current
    from ccai.training.runs import TrainingRun

    hf_logging.disable_progress_bar()  # our own bars show progress; weight-loading bars are noise
    if not progress:
        import datasets

        datasets.disable_progress_bars()  # nor the trainers' tokenising bars when asked to be quiet
    ranks = current(config.device)  # under `accelerate launch`: this process's rank (see distributed.py)
    progress = progress and ranks.main  # one set of progress bars, from process 0
    config = _with_threads(config, Path(out), resume)
    constitution_path = Path(constitution_path).resolve()
    constitution = _load_constitution(constitution_path)
    if not constitution.is_reviewed and not config.accept_unreviewed:
        raise ValueError(
            f"{constitution_path}: constitution '{constitution.name}' is a draft no person has approved "
            f"({constitution.review_line()}). Read it, then `ccai constitution approve {constitution_path} "
            "--by NAME`; or set accept_unreviewed=true to train on it anyway (its model cards will say so)"
        )
    base = on_main(lambda: resolve_model(config.model), ranks)  # prepared once, then found by the rest
    split = split_prompts(config.data, config.seed)
    resolved = {
        **dump_config(config),
        "constitution": str(constitution_path),
        "constitution_hash": constitution.content_hash,
        "base_model_dir": str(base),
    }
    inputs = [constitution_path, base / "config.json", base / "model.safetensors"]
    run = TrainingRun.open(
        out,
        resolved,
        seed=config.seed,
        inputs=inputs,
        resume=resume,
        mutable=("rl",) if tuple(stages) == ("rl",) else (),
        ranks=ranks,
    )
    if not run.done("split") and run.writer:
        (run.path / "data").mkdir(exist_ok=True)
        run.run.write_json(
            "data/split.json",
            {
                "counts": split.counts(),
                "train_red_team": [p.id for p in split.red_team],
                "train_helpful": [p.id for p in split.helpful],
                "heldout_red_team": [p.id for p in split.heldout_red_team],
                "heldout_helpful": [p.id for p in split.heldout_helpful],
            },
        )
    if not run.done("split"):
        run.mark("split", **split.counts())
    import torch

    torch.set_num_threads(config.threads)
    ctx = _Context(
        config,
        constitution,
        constitution_path,
        base,
        split,
        run,
        _progress_factory(progress),
        list(callbacks or []),
        make_backend,
        progress,
        ranks,
    )
    result = TrainingResult(run.path)
    if "sl" in stages:
        result.sl_model = ctx.sl()
    if "rl" in stages and config.rl.method != "none":
        result.pm_model, result.rl_model = ctx.rl()
    result.summary = {step: run.result(step) for step in ("split", *STEPS) if run.done(step)}
    if run.writer:
        run.run.finish(
            summary=result.summary, final_model=str(result.final_model) if result.final_model else None
        )
    ranks.barrier()  # the run folder is complete when any process returns
    return result


@dataclass
class _Context:
    config: TrainingConfig
    constitution: Any
    constitution_path: Path
    base: Path
    split: Any
    run: Any
    bar: Callable[[str, int], Any]
    callbacks: list[Any]
    make_backend: Callable[..., Any]
    show_progress: bool = True
    ranks: Ranks = SINGLE

    @property
    def weighted(self) -> bool:
        return self.config.principle_sampling == "weighted"

    @property
    def bf16(self) -> bool:
        from ccai.training.runs import use_bf16

        return use_bf16(self.config.bf16, self.config.device)

    def _backend(self, spec: str | Path) -> Any:
        return self.make_backend(
            str(spec),
            device=process_device(self.config.device, self.ranks),
            batch_size=self.config.sl.generation.batch_size,
        )

    def _save(self, trainer: Any, model_dir: Path, card: Callable[[], None]) -> None:
        """The trained model (adapters merged) and its card, written by process 0; every process waits."""
        from ccai.training.runs import save_model

        def write() -> None:
            save_model(trainer.model, trainer.processing_class, model_dir)
            card()

        on_main(write, self.ranks)

    def _trainer_callbacks(self, stage: str, out_dir: Path) -> list[Any]:
        from ccai.training.runs import checkpoint_step, latest_checkpoint, step_progress

        self.run.prune_metrics(stage, checkpoint_step(latest_checkpoint(out_dir)))
        labels = {
            "sl": "SL-CAI fine-tuning",
            "pm": "preference model",
            "rl": f"RL-CAI {self.config.rl.method}",
        }
        bar = [step_progress(labels[stage])] if self.show_progress else []
        return [self.run.metrics_callback(stage), *bar, *self.callbacks]

    def _card(
        self, model_dir: Path, stage: str, title: str, counts: dict, settings: Any, results: dict
    ) -> None:
        from ccai.training.runs import write_model_card

        write_model_card(
            model_dir,
            title=title,
            base_model=base_model_name(self.config.model),
            constitution=self.constitution,
            constitution_path=str(self.constitution_path),
            stage=stage,
            data_counts=counts,
            settings=settings,
            results=results,
        )

    def red_team(self) -> list[Any]:
        """The run's red-team prompts: the sampled human ones, then any written few-shot by the model
        (``data.generated_red_team``; made once, stored in ``data/red_team_generated.jsonl``)."""
        from ccai.training.data import Prompt

        n = self.config.data.generated_red_team
        if not n:
            return list(self.split.red_team)
        path = self.run.path / "data" / "red_team_generated.jsonl"
        if not self.run.done("red_team_generated"):

            def make() -> tuple[int, dict]:  # a few prompts: process 0 writes them, the others wait
                import json

                from ccai.files import atomic_write_text
                from ccai.training.augment import generate_red_team

                backend = self._backend(self.config.generator or self.base)
                with self.bar("more red-team prompts (few-shot)", 1) as advance:
                    tokens = self.config.sl.generation.max_new_tokens
                    made, rejected = generate_red_team(backend, self.config.data, n, self.config.seed, tokens)
                    advance(1)
                lines = "".join(json.dumps({"id": p.id, "prompt": p.text}) + "\n" for p in made)
                atomic_write_text(path, lines)
                return len(made), rejected

            kept, rejected = on_main(make, self.ranks)
            self.run.mark("red_team_generated", asked=n, kept=kept, rejected=rejected)
        from ccai.formats.hf import iter_json_lines

        made = [Prompt(row["id"], row["prompt"], "red_team") for _, row in iter_json_lines(path)]
        return [*self.split.red_team, *made]

    # -- SL-CAI -----------------------------------------------------------------------------------
    def sl(self) -> Path:
        from ccai.formats.hf import read_rows
        from ccai.training.distributed import gather
        from ccai.training.runs import run_chunks
        from ccai.training.sl_cai import generate_chunk, quality_counts, train_sft

        cfg, run = self.config, self.run
        data_path = run.path / "data" / "sl_cai.jsonl"
        if not run.done("sl_data"):
            red_team = self.red_team()
            backend = self._backend(cfg.generator or self.base)
            prompts = [*red_team, *self.split.helpful]
            tokens_before = getattr(backend, "tokens_generated", 0)
            import time

            start = time.time()
            with self.bar("SL-CAI data (initial -> critique -> revision)", len(prompts)) as advance:
                rows = run_chunks(
                    run,
                    "sl_data",
                    prompts,
                    cfg.sl.generation.batch_size,
                    lambda chunk, index: generate_chunk(
                        backend, chunk, self.constitution, cfg.sl, cfg.seed, index, self.weighted
                    ),
                    data_path,
                    "sl",
                    progress=advance,
                    ranks=self.ranks,
                )
            seconds = time.time() - start
            tokens = sum(gather(getattr(backend, "tokens_generated", 0) - tokens_before, self.ranks))
            run.mark(
                "sl_data",
                rows=len(rows),
                red_team=sum(r["source"] == "red_team" for r in rows),
                helpful=sum(r["source"] == "helpful" for r in rows),
                seconds=round(seconds, 1),
                generated_tokens=tokens,
                tokens_per_second=round(tokens / seconds, 1) if seconds else None,
                unchanged_revisions=sum(
                    bool(r["revisions"]) and r["revisions"][-1] == r["initial_response"] for r in rows
                ),
                **quality_counts(rows),
            )
            del backend
        sl_dir = run.path / "sl" / "model"
        if not run.done("sl_train"):
            rows = read_rows(data_path, "sl")
            ckpt = run.path / "sl" / "checkpoints"
            trainer, results = train_sft(
                self.base,
                rows,
                cfg.sl.train,
                ckpt,
                seed=cfg.seed,
                bf16=self.bf16,
                device=cfg.device,
                callbacks=self._trainer_callbacks("sl", ckpt),
                measure_loss=cfg.sl.measure_loss,
            )
            counts = {k: v for k, v in run.result("sl_data").items() if k in SL_CARD_COUNTS}
            settings = {
                "sl": cfg.sl.model_dump(),
                "seed": cfg.seed,
                "bf16": self.bf16,
                "principle_sampling": cfg.principle_sampling,
                "processes": self.ranks.world,
            }
            title = f"SL-CAI model ({self.constitution.name})"
            self._save(trainer, sl_dir, lambda: self._card(sl_dir, "sft", title, counts, settings, results))
            run.mark("sl_train", model=str(sl_dir), bf16=self.bf16, **results)
        return sl_dir

    # -- RL-CAI -----------------------------------------------------------------------------------
    def rl(self) -> tuple[Path | None, Path]:
        from ccai.formats.hf import read_rows, write_rows
        from ccai.training.distributed import map_chunks
        from ccai.training.feedback import FeedbackLabeller
        from ccai.training.human_prefs import heldout_harmless_pairs, helpful_pairs, sample
        from ccai.training.preference import (
            PM_SOURCES,
            helpful_count,
            label_pairs,
            pm_accuracy,
            revision_pairs,
            sample_pairs,
            train_dpo,
            train_online,
            train_reward_model,
        )
        from ccai.training.runs import run_chunks

        cfg, run, rl = self.config, self.run, self.config.rl
        sl_dir = run.path / "sl" / "model"
        if not run.done("sl_train"):
            raise ValueError(f"{run.path}: RL-CAI needs the SL-CAI model; run `ccai train sl` first")
        red_team = self.red_team()
        prompts = red_team[: rl.prompts or len(red_team)]
        pairs_path = run.path / "data" / "rl_samples.jsonl"
        if not run.done("rl_pairs"):
            backend = self._backend(sl_dir)
            with self.bar("RL-CAI: two samples per prompt", len(prompts)) as advance:
                samples = run_chunks(
                    run,
                    "rl_pairs",
                    prompts,
                    rl.generation.batch_size,
                    lambda chunk, index: sample_pairs(backend, chunk, rl, cfg.seed, index),
                    pairs_path,
                    "sample",
                    progress=advance,
                    ranks=self.ranks,
                )
            run.mark("rl_pairs", pairs=len(samples))
            del backend
        labels_path = run.path / "data" / "rl_pairs.jsonl"
        if not run.done("rl_labels"):
            samples = read_rows(pairs_path, "sample")
            spec = {"base": self.base, "sl": sl_dir}.get(rl.feedback_model, rl.feedback_model)
            labeller = FeedbackLabeller(
                self._backend(spec),
                self.constitution,
                seed=cfg.seed,
                cot=rl.cot,
                clamp=(rl.clamp_low, rl.clamp_high),
                cot_max_new_tokens=rl.cot_max_new_tokens,
                weighted=self.weighted,
                few_shot=rl.few_shot,
            )
            rows: list[dict] = []
            size = rl.generation.batch_size
            chunks = [samples[k : k + size] for k in range(0, len(samples), size)]
            with self.bar("RL-CAI: AI feedback (both orders)", len(samples)) as advance:
                for index, labelled in map_chunks(
                    chunks,
                    lambda chunk, _: label_pairs(labeller, chunk, self.constitution.content_hash),
                    self.ranks,
                ):
                    rows += labelled
                    advance(len(chunks[index]))
            ai_rows = list(rows)
            # The helpfulness arm: human comparisons mixed in as CAI mixed them into its preference model.
            helpful_train, _, skipped = helpful_pairs(cfg.data) if rl.helpful_fraction else ([], [], {})
            wanted = helpful_count(len(ai_rows), rl.helpful_fraction)
            human = [p.row("human_helpful") for p in sample(helpful_train, wanted, cfg.seed, "rl_helpful")]
            revised = []
            if rl.revision_pairs:
                revised = revision_pairs(read_rows(run.path / "data" / "sl_cai.jsonl", "sl"))
            rows = [*ai_rows, *human, *revised]
            if run.writer:
                write_rows(labels_path, rows, "preference")
            self.ranks.barrier()
            p = [r["p_a"] for r in ai_rows]
            masses = [r["option_mass"] for r in ai_rows if r["option_mass"] is not None]
            run.mark(
                "rl_labels",
                pairs=len(rows),
                ai_harmless_pairs=len(ai_rows),
                human_helpful_pairs=len(human),
                revision_pairs=len(revised),
                human_helpful_skipped=skipped,
                feedback_model=str(spec),
                mean_p_a=sum(p) / len(p) if p else None,
                mean_soft_label=sum(r["soft_label"] for r in ai_rows) / len(ai_rows) if ai_rows else None,
                mean_option_mass=sum(masses) / len(masses) if masses else None,
            )
            del labeller
        rows = read_rows(labels_path, "preference")
        pm_dir = None
        if rl.reward_model or rl.method in ("grpo", "rloo"):
            pm_dir = run.path / "pm" / "model"
            if not run.done("pm_train"):
                ckpt = run.path / "pm" / "checkpoints"
                trainer, results = train_reward_model(
                    self.base,
                    rows,
                    rl,
                    ckpt,
                    seed=cfg.seed,
                    bf16=self.bf16,
                    device=cfg.device,
                    callbacks=self._trainer_callbacks("pm", ckpt),
                )
                if rl.pm_eval_pairs and self.ranks.main:  # held-out human judgements (chance: 0.5)
                    _, helpful_held, _ = helpful_pairs(cfg.data)
                    heldout = {
                        kind: sample(pairs, rl.pm_eval_pairs, cfg.seed, "pm_eval")
                        for kind, pairs in (
                            ("harmless", heldout_harmless_pairs(cfg.data)),
                            ("helpful", helpful_held),
                        )
                    }
                    for kind, pairs in heldout.items():
                        results[f"heldout_{kind}_pairs"] = len(pairs)
                        results[f"heldout_{kind}_accuracy"] = pm_accuracy(
                            trainer.model,
                            trainer.processing_class,
                            [pair.row(kind) for pair in pairs],
                            rl.pm_train.max_length,
                        )
                pm_rows = [r for r in rows if r.get("source", "ai_harmless") in PM_SOURCES]
                self._save(
                    trainer,
                    pm_dir,
                    lambda: self._card(
                        pm_dir,
                        "reward-model",
                        f"Preference model ({self.constitution.name})",
                        {"pairs": len(pm_rows), **_by_source(pm_rows)},
                        {
                            "rl": rl.model_dump(),
                            "seed": cfg.seed,
                            "principle_sampling": cfg.principle_sampling,
                            "processes": self.ranks.world,
                        },
                        results,
                    ),
                )
                run.mark("pm_train", model=str(pm_dir), **results)
        rl_dir = run.path / "rl" / "model"
        if not run.done("rl_train"):
            ckpt = run.path / "rl" / "checkpoints"
            callbacks = self._trainer_callbacks("rl", ckpt)
            if rl.method == "dpo":
                trainer, results = train_dpo(
                    sl_dir,
                    rows,
                    rl,
                    ckpt,
                    seed=cfg.seed,
                    bf16=self.bf16,
                    device=cfg.device,
                    callbacks=callbacks,
                    measure_loss=rl.measure_loss,
                )
            else:
                # online RL samples its own responses: helpful prompts join the pool (as in CAI)
                extra = helpful_count(len(prompts), rl.helpful_fraction)
                trainer, results = train_online(
                    sl_dir,
                    pm_dir,
                    [*prompts, *self.split.helpful[:extra]],
                    rl,
                    ckpt,
                    seed=cfg.seed,
                    bf16=self.bf16,
                    device=cfg.device,
                    callbacks=callbacks,
                )
            sl_done = run.result("sl_data")
            counts = {
                "sl_rows": sl_done["rows"],
                **{k: v for k, v in sl_done.items() if k in SL_CARD_COUNTS and k != "rows"},
                "preference_pairs": len(rows),
                **_by_source(rows),
            }
            settings = {
                "sl": cfg.sl.model_dump(),
                "rl": rl.model_dump(),
                "seed": cfg.seed,
                "bf16": self.bf16,
                "principle_sampling": cfg.principle_sampling,
                "processes": self.ranks.world,
            }
            title = f"RL-CAI model ({self.constitution.name})"
            self._save(
                trainer, rl_dir, lambda: self._card(rl_dir, rl.method, title, counts, settings, results)
            )
            run.mark("rl_train", model=str(rl_dir), method=rl.method, **results)
        return pm_dir, rl_dir


def continue_rl(
    run_dir: Path | str, overrides: list[str] | None = None, *, progress: bool = True
) -> TrainingResult:
    """RL-CAI in an existing run folder (after ``ccai train sl``): stored config plus ``rl.*`` overrides."""
    import yaml

    from ccai.config import ConfigError, apply_overrides
    from ccai.training.config import TrainingConfig

    run_dir = Path(run_dir)
    stored_file = run_dir / "config.yaml"
    if not stored_file.is_file():
        raise FileNotFoundError(f"{run_dir}: no config.yaml; is this a ccai training run folder?")
    stored = yaml.safe_load(stored_file.read_text())
    for text in overrides or []:
        if not text.startswith("rl."):
            raise ConfigError(f"override {text!r}: only rl.* settings can change after SL-CAI")
    constitution = stored.pop("constitution")
    for key in ("constitution_hash", "base_model_dir"):
        stored.pop(key, None)
    config = TrainingConfig.model_validate(apply_overrides(stored, list(overrides or [])))
    return train(config, constitution, run_dir, resume=True, stages=("rl",), progress=progress)


def base_model_name(model: str) -> str:
    """What a model card calls the base model: the Hub id of the bundled SmolLM2, else the given folder."""
    from ccai.models.prepare import BUNDLED_HUB_ID, is_bundled

    return BUNDLED_HUB_ID if is_bundled(model) else str(model)
