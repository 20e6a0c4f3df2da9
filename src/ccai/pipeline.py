"""The whole study on one screen: consultation export -> analysis -> constitutions -> training -> evaluation.

This is the CCAI experiment as one function. Each stage is the stage package's own entry point; this module
only wires their outputs together and writes one run directory with a stage folder each and an
``index.html`` that links the stage reports and lists the headline figures:

    out/analysis/        statements.csv, participants.csv, summary.json, report.html   (ccai.analysis)
    out/constitution/    public.{json,yaml,md,html}, standard.*, compare.html          (ccai.constitution)
    out/training/<name>/ SL-CAI + RL-CAI run per constitution, HF model dirs             (ccai.training)
    out/evaluation/      results.json, report.html: base vs public vs standard           (ccai.evaluation)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ccai.config import StageConfig, dump_config
from ccai.evaluation.config import EvalConfig
from ccai.manifest import RunDir
from ccai.training.config import TrainingConfig

STAGES = ("analysis", "constitution", "training", "evaluation")
Stage = Literal["analysis", "constitution", "training", "evaluation"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnalysisSettings(_Section):
    """Which consultation, and the organisers' cleaning rules (defaults: the CCAI consultation)."""

    export: str = Field("ccai_polis", description="a Polis export folder, or its name under CCAI_DATA_DIR")
    exclude: str | None = Field("ids-to-toss.csv", description="participant ids to drop (file in the export)")
    groups: str | int = Field(2, description="'polis' (k by silhouette), 'given', or a fixed k")
    more_than: int = Field(25, ge=0, description="keep participants with more than this many votes")
    moderation: Literal["polis", "accepted", "none"] = "accepted"


class ConstitutionSettings(_Section):
    threshold: float | None = Field(0.723, gt=0, le=1, description="GAC threshold (the CCAI organisers')")
    count: int | None = Field(None, ge=1, description="or: the number of statements to keep")
    merge_similarity: float = Field(0.6, gt=0, le=1)
    review: str | None = Field(None, description="merge review YAML (created on the first run)")


class StudyConfig(StageConfig):
    """One YAML for the whole study; each section is that stage's own config."""

    stages: list[Stage] = Field(default_factory=lambda: list(STAGES))
    analysis: AnalysisSettings = AnalysisSettings()
    constitution: ConstitutionSettings = ConstitutionSettings()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvalConfig = EvalConfig()


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
    run = RunDir.create(
        out, dump_config(config), seed=config.seed, inputs=[export] if export else [], stage="study"
    )
    result = StudyResult(out)
    for stage in STAGES:
        if stage in config.stages:
            run.log("stage_start", stage=stage)
            result.outputs[stage] = _RUNNERS[stage](config, out, progress)
            run.log("stage_done", stage=stage, summary=result.outputs[stage])
    write_index(out, result.outputs)
    run.finish(stages=list(config.stages))
    return result


def _analysis(config: StudyConfig, out: Path, progress: bool) -> dict[str, Any]:
    from ccai.analysis import analyze
    from ccai.formats.polis import read_id_list, read_polis_export

    settings = config.analysis
    folder = resolve_export(settings.export)
    export = read_polis_export(folder)
    exclude = read_id_list(folder / settings.exclude) if settings.exclude else []
    result = analyze(
        export.votes,
        export.statements,
        reference_groups=export.participants.get("group_id"),
        groups=settings.groups,
        exclude=exclude,
        more_than=settings.more_than,
        moderation=settings.moderation,
        seed=config.seed,
    )
    result.save(out / "analysis", inputs=[folder], config=settings.model_dump(), report=True)
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    return {key: summary.get(key) for key in ("counts", "k", "gac") if key in summary}


def _constitution(config: StudyConfig, out: Path, progress: bool) -> dict[str, Any]:
    from ccai.constitution.build import build_constitution
    from ccai.constitution.compare import compare, mark_inspired_by_standard
    from ccai.constitution.select import read_statements
    from ccai.constitution.standard import standard_constitution
    from ccai.constitution.study import write_all_formats

    settings = config.constitution
    folder = out / "constitution"
    folder.mkdir(parents=True, exist_ok=True)
    built = build_constitution(
        read_statements(out / "analysis" / "statements.csv"),
        threshold=None if settings.count else settings.threshold,
        count=settings.count,
        merge_similarity=settings.merge_similarity,
        review=settings.review,
        name="public",
        consultation=config.analysis.export,
    )
    standard = standard_constitution()
    comparison = compare(built.constitution, standard)
    public = mark_inspired_by_standard(comparison)
    write_all_formats(public, folder, "public")
    write_all_formats(standard, folder, "standard")
    (folder / "compare.html").write_text(comparison.to_html())
    return {
        "statements_selected": len(built.selection.statements),
        "merges_proposed": len(built.merges),
        "public_principles": len(public.principles),
        "standard_principles": len(standard.principles),
        "public_hash": public.content_hash,
        "overlap": comparison.summary(),
    }


def _training(config: StudyConfig, out: Path, progress: bool) -> dict[str, Any]:
    from ccai.training import train_many

    folder = out / "constitution"
    runs = train_many(
        config.training,
        [folder / "public.json", folder / "standard.json"],
        out / "training",
        progress=progress,
    )
    return {run.run_dir.name: str(run.final_model) for run in runs}


def _evaluation(config: StudyConfig, out: Path, progress: bool) -> dict[str, Any]:
    from ccai.evaluation import evaluate

    finals = {run.name: _final_model(run) for run in sorted((out / "training").glob("*/"))}
    models = [f"base={config.training.model}"] + [f"{name}={path}" for name, path in finals.items() if path]
    eval_config = config.evaluation.model_copy(update={"models": models, "seed": config.seed})
    result = evaluate(eval_config, out / "evaluation", show_progress=progress)
    return {"models": models, "results": str(result.path / "results.json")}


def _final_model(run_dir: Path) -> Path | None:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    final = manifest.get("final_model")
    return Path(final) if final else None


_RUNNERS = {
    "analysis": _analysis,
    "constitution": _constitution,
    "training": _training,
    "evaluation": _evaluation,
}


def write_index(out: Path, outputs: dict[str, Any]) -> Path:
    """``index.html``: one page linking every stage's report, with each stage's headline figures."""
    from jinja2 import Environment, select_autoescape

    links = {
        "analysis": "analysis/report.html",
        "constitution": "constitution/compare.html",
        "evaluation": "evaluation/report.html",
    }
    rows = []
    for name in (stage for stage in STAGES if stage in outputs):
        link = links.get(name)
        rows.append(
            (
                name,
                link if link and (out / link).exists() else None,
                json.dumps(outputs[name], indent=2, default=str),
            )
        )
    template = Environment(autoescape=select_autoescape(default=True)).from_string(_INDEX)
    html = template.render(stages=rows)
    path = out / "index.html"
    path.write_text(html)
    return path


_INDEX = """<!doctype html><html lang="en"><meta charset="utf-8"><title>ccai study</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#222}
pre{background:#f5f5f5;padding:.8rem;overflow:auto;font-size:13px}h2{border-bottom:1px solid #ddd}</style>
<h1>Collective Constitutional AI: the study</h1>
<p>consultation → analysis → constitution → training → evaluation. Each stage's folder is self-describing
(config.yaml, manifest.json, log.jsonl).</p>
{% for name, link, figures in stages %}<h2>{{ name }}</h2>
{% if link %}<p><a href="{{ link }}">open the {{ name }} report</a></p>{% endif %}<pre>{{ figures }}</pre>
{% endfor %}</html>
"""
