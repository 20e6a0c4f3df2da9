"""The whole study on one screen: consultation export -> analysis -> constitutions -> training -> evaluation.

This is the CCAI experiment as one function. Each stage is the stage package's own entry point; this module
only wires their outputs together and writes one run directory with a stage folder each and an
``index.html`` (:mod:`ccai.study_report`) that a person reads: Table 1, the groups, the principles, the
training curves, and links to every stage's own report:

    out/analysis/        statements.csv, participants.csv, summary.json, report.html   (ccai.analysis)
    out/constitution/    public.{json,yaml,md,html}, standard.*, compare_standard.html (ccai.constitution)
    out/training/<name>/ SL-CAI + RL-CAI run per constitution, HF model dirs             (ccai.training)
    out/evaluation/      results.json, report.html: base vs public vs standard           (ccai.evaluation)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ccai.analysis.stage import AnalysisConfig
from ccai.config import StageConfig, dump_config
from ccai.constitution.stage import ConstitutionConfig
from ccai.evaluation.config import EvalConfig
from ccai.manifest import RunDir
from ccai.study_report import write_study_report
from ccai.training.config import TrainingConfig

STAGES = ("analysis", "constitution", "training", "evaluation")
Stage = Literal["analysis", "constitution", "training", "evaluation"]


class AnalysisSection(AnalysisConfig):
    """The analysis stage's config plus which consultation (defaults: the CCAI consultation and the
    organisers' cleaning rules: > 25 votes, minus ids-to-toss.csv, accepted statements, two groups)."""

    export: str = Field("ccai_polis", description="a Polis export folder, or its name under CCAI_DATA_DIR")
    exclude: str | None = Field("ids-to-toss.csv", description="participant ids to drop (file in the export)")
    groups: str | int = Field(2, description="'polis' (k by silhouette), 'given', or a fixed k")
    more_than: int | None = Field(25, ge=0, description="keep participants with more than this many votes")
    moderation: Literal["polis", "accepted", "none"] = "accepted"


class StudyConfig(StageConfig):
    """One YAML for the whole study; each section is that stage's own config. ``seed`` seeds every stage."""

    stages: list[Stage] = Field(default_factory=lambda: list(STAGES))
    jobs: int | None = Field(None, ge=1, description="constitutions trained at once (default: as cores and "
                             "memory allow on a CPU, one on a GPU)")
    analysis: AnalysisSection = AnalysisSection()
    constitution: ConstitutionConfig = ConstitutionConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvalConfig = EvalConfig()

    @model_validator(mode="before")
    @classmethod
    def _one_seed(cls, data: Any) -> Any:
        for section in ("analysis", "constitution", "training", "evaluation"):
            if isinstance(data, dict) and isinstance(data.get(section), dict) and "seed" in data[section]:
                raise ValueError(f"{section}.seed: set `seed` once at the top of a study (it seeds every "
                                 "stage)")
        return data

    @model_validator(mode="after")
    def _seed_every_stage(self) -> StudyConfig:
        for section in (self.analysis, self.constitution, self.training, self.evaluation):
            if section.seed != self.seed:
                section.seed = self.seed
        # One held-out split: evaluation must never score prompts the models were trained on.
        data, evaluation = self.training.data, self.evaluation
        split = (data.heldout_fraction, data.split_seed)
        if (evaluation.heldout_fraction, evaluation.heldout_split_seed) != split:
            if {"heldout_fraction", "heldout_split_seed"} & evaluation.model_fields_set:
                raise ValueError("evaluation.heldout_fraction / heldout_split_seed: a study uses the "
                                 "training split; set training.data.heldout_fraction / split_seed instead")
            evaluation.heldout_fraction, evaluation.heldout_split_seed = split
        return self


@dataclass
class StudyResult:
    path: Path
    outputs: dict[str, Any] = field(default_factory=dict)


def resolve_export(name: str) -> Path:
    from ccai.datasets import dataset_path

    path = Path(name).expanduser()
    return path if path.is_dir() else dataset_path(name)


def run_study(config: StudyConfig, out: Path | str, *, progress: bool = True) -> StudyResult:
    """Run the configured stages in order; a stage reads only what the previous ones wrote in ``out``."""
    out = Path(out)
    export = resolve_export(config.analysis.export) if "analysis" in config.stages else None
    run = RunDir.create(out, dump_config(config), seed=config.seed, inputs=[export] if export else [],
                        stage="study")
    result = StudyResult(out)
    for stage in STAGES:
        if stage in config.stages:
            run.log("stage_start", stage=stage)
            result.outputs[stage] = _RUNNERS[stage](config, out, progress)
            run.log("stage_done", stage=stage, summary=result.outputs[stage])
    write_study_report(out)
    run.finish(stages=list(config.stages))
    return result


def _analysis(config: StudyConfig, out: Path, progress: bool) -> dict[str, Any]:
    from ccai.analysis.stage import AnalysisConfig, run

    settings = config.analysis
    stage_config = AnalysisConfig(**settings.model_dump(exclude={"export"}))
    run(stage_config, resolve_export(settings.export), out / "analysis")
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    return {key: summary.get(key) for key in ("counts", "k", "gac") if key in summary}


def _constitution(config: StudyConfig, out: Path, progress: bool) -> dict[str, Any]:
    from ccai.constitution.stage import run

    settings = config.constitution
    if settings.consultation is None:
        settings = settings.model_copy(update={"consultation": config.analysis.export})
    result = run(settings, out / "analysis" / "statements.csv", out / "constitution")
    return json.loads((out / "constitution" / "manifest.json").read_text())["summary"] | {
        "merges_proposed": len(result.merges)}


def _training(config: StudyConfig, out: Path, progress: bool) -> dict[str, Any]:
    from ccai.training.stage import run

    folder = out / "constitution"
    runs = run(config.training, [folder / "public.json", folder / "standard.json"], out / "training",
               jobs=config.jobs, progress=progress)
    return {r.run_dir.name: str(r.final_model) for r in runs}


def _evaluation(config: StudyConfig, out: Path, progress: bool) -> dict[str, Any]:
    from ccai.evaluation import evaluate

    trained = json.loads((out / "training" / "summary.json").read_text())
    finals = {name: trained[name]["model"] for name in sorted(trained) if trained[name]["model"] != "None"}
    models = [f"base={config.training.model}"] + [f"{name}={path}" for name, path in finals.items()]
    update: dict[str, Any] = {"models": models}
    if "adherence" in config.evaluation.tasks and not config.evaluation.adherence.constitutions:
        folder = out / "constitution"  # the study's own constitutions, as trained
        specs = [f"{n}={folder / f'{n}.json'}" for n in ("public", "standard")
                 if (folder / f"{n}.json").is_file()]
        update["adherence"] = config.evaluation.adherence.model_copy(update={"constitutions": specs})
    eval_config = config.evaluation.model_copy(update=update)
    result = evaluate(eval_config, out / "evaluation", show_progress=progress)
    return {"models": models, "results": str(result.path / "results.json")}


_RUNNERS = {"analysis": _analysis, "constitution": _constitution, "training": _training,
            "evaluation": _evaluation}
