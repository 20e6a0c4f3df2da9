"""``evaluate``: every selected benchmark on every model, one run directory, one results.json and report.

Order of work: draw each task's seeded sample once (the same items for every model, ids logged); load one
model at a time, run the single-model tasks and generate its pairwise answers, free it; then load the judge
and compare answers. A model given twice (same files) is not re-run on deterministic tasks: its outputs are
reused and the report says so, which keeps "model against itself" runs cheap and exactly consistent.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccai.config import dump_config
from ccai.evaluation.adherence import Item, parse_constitutions
from ccai.evaluation.bbq import BBQ
from ccai.evaluation.config import JUDGED_TASKS, MULTI_MODEL_TASKS, EvalConfig
from ccai.evaluation.gsm8k import GSM8K
from ccai.evaluation.mmlu import MMLU
from ccai.evaluation.opinionqa import OpinionQA
from ccai.evaluation.pairwise import (
    elo_table,
    human_agreement,
    judge_pairs,
    load_human_pairs,
    load_prompts,
)
from ccai.evaluation.refusal import Safety
from ccai.evaluation.sampling import stratified_sample
from ccai.evaluation.stats import clean, paired_difference, verdict_of
from ccai.evaluation.tasks import CHOICE_NEEDS, Sample, Task
from ccai.manifest import RunDir

BackendFactory = Callable[[str], Any]


@dataclass
class ModelEntry:
    label: str
    spec: str
    identity: str  # resolved path (or URL#model) used to recognise the same model given twice


@dataclass
class EvalResult:
    """Everything ``results.json`` holds, plus where the run directory is."""

    path: Path
    results: dict[str, Any] = field(default_factory=dict)


def parse_models(specs: list[str]) -> list[ModelEntry]:
    """``LABEL=SPEC`` or ``SPEC`` (label = folder name); SPEC: 'smollm2', a folder or openai:URL#model."""
    if not specs:
        raise ValueError(
            "no models given: pass at least one MODEL (e.g. smollm2, a model folder, or "
            "openai:http://127.0.0.1:8000/v1#name)"
        )
    entries: list[ModelEntry] = []
    seen: set[str] = set()
    for spec in specs:
        label, sep, rest = spec.partition("=")
        if not sep or "/" in label or ":" in label:
            label, rest = "", spec
        rest = rest.strip()
        if not rest:
            raise ValueError(f"model {spec!r}: empty model after '='")
        if not label:
            label = "smollm2" if rest.lower() == "smollm2" else Path(rest.split("#")[-1]).name or rest
        base, n = label, 2
        while label in seen:
            label, n = f"{base}#{n}", n + 1
        seen.add(label)
        entries.append(ModelEntry(label, rest, _identity(rest)))
    return entries


def _identity(spec: str) -> str:
    if spec.startswith("openai:"):
        return spec
    if spec.lower() in {"smollm2", "smollm2-135m-instruct", "default"}:
        return "smollm2"
    path = Path(spec).expanduser().resolve()
    from ccai.models.prepare import SMOLLM2_DIRNAME, default_cache_dir

    if path == (default_cache_dir() / "models" / SMOLLM2_DIRNAME).resolve():
        return "smollm2"  # the bundled model named by its cache folder (as training records it)
    return str(path)


def training_provenance(spec: str) -> dict[str, str]:
    """The RL feedback model (and preference model) a ``ccai train`` model was trained with, if recorded.

    A model written by ``ccai train`` lives in ``RUN/sl/model`` or ``RUN/rl/model``; ``RUN/state.json``
    records the feedback model that labelled its RL pairs and the preference model trained on them.
    """
    if spec.startswith("openai:"):
        return {}
    state = Path(spec).expanduser().resolve().parent.parent / "state.json"
    if not state.is_file():
        return {}
    try:
        done = json.loads(state.read_text(encoding="utf-8")).get("done", {})
    except (OSError, json.JSONDecodeError):
        return {}
    out = {}
    if (done.get("rl_labels") or {}).get("feedback_model"):
        out["feedback_model"] = str(done["rl_labels"]["feedback_model"])
    if (done.get("pm_train") or {}).get("model"):
        out["preference_model"] = str(done["pm_train"]["model"])
    return out


def judge_conflicts(judge: str, entries: list[ModelEntry], role: str = "judge") -> list[str]:
    """Why ``judge`` (or another ``role``: the scenario writer) is not independent of the contestants.

    Empty when it is. A served model is also compared by the folder its server reports (``ccai models
    serve`` lists it as ``root`` in ``/v1/models``): the bundled model behind a URL is still that model.
    """
    names = {_identity(judge)}
    names |= {_identity(root) for root in [served_root(judge)] if root}
    reasons = []
    for entry in entries:
        identities = {entry.identity} | {_identity(r) for r in [served_root(entry.spec)] if r}
        if identities & names:
            same = "" if entry.identity == _identity(judge) else " (the same model files behind the server)"
            what = " (the reference model)" if entry is entries[0] and len(entries) > 1 else ""
            reasons.append(f"the {role} {judge!r} is the contestant {entry.label!r}{what}{same}")
        feedback = training_provenance(entry.spec).get("feedback_model")
        if feedback and _identity(feedback) in names:
            reasons.append(
                f"the {role} {judge!r} is the RL feedback model {entry.label!r} was trained toward"
            )
    return reasons


def served_root(spec: str, timeout: float = 5.0) -> str | None:
    """The model folder an OpenAI-compatible server reports for ``openai:URL#NAME`` (None if it does not)."""
    if not spec.startswith("openai:") or "#" not in spec:
        return None
    url, _, name = spec.removeprefix("openai:").partition("#")
    try:
        import httpx

        listing = httpx.get(url.rstrip("/") + "/models", timeout=timeout).json()
        for model in listing.get("data", []):
            if (
                model.get("id") == name
                and isinstance(model.get("root"), str)
                and model["root"].startswith("/")
            ):
                return model["root"]
    except Exception:  # noqa: BLE001 - a server that does not say is simply not matched
        return None
    return None


def check_judge(config: EvalConfig, entries: list[ModelEntry]) -> list[str]:
    """Refuse a missing or non-independent judge before anything runs; return the conflicts allowed."""
    pairwise = [
        t
        for t in config.tasks
        if t in MULTI_MODEL_TASKS or (t in JUDGED_TASKS and config.adherence.constitutions)
    ]
    if not pairwise or len(entries) < 2:
        return []
    if not config.judge:
        verb = "needs" if len(pairwise) == 1 else "need"
        raise ValueError(
            f"{' and '.join(pairwise)} {verb} a judge: pass --judge MODEL (a model that is not one of the "
            "contestants nor the RL feedback model they were trained with, e.g. a larger local model or "
            "openai:URL#NAME), or leave those tasks out with --tasks"
        )
    conflicts = judge_conflicts(config.judge, entries)
    if conflicts and not config.allow_contestant_judge:
        raise ValueError(
            "; ".join(conflicts)
            + ": a judge must be independent of what it judges (trained models are optimised toward their "
            "feedback model's preferences). Pick another --judge, or pass --allow-contestant-judge to run "
            "anyway (the report will say so)."
        )
    return conflicts


def check_writer(config: EvalConfig, entries: list[ModelEntry]) -> list[str]:
    """Refuse a scenario writer that is a contestant (the judge's rule and override); return those allowed.

    A model that writes the prompts it is then tested on chooses its own exam: a leak, whichever way it
    bends the result. Only checked when the writer will be used (adherence runs with two or more models).
    """
    settings = config.adherence
    if (
        "adherence" not in config.tasks
        or not settings.constitutions
        or not settings.generated_count()
        or len(entries) < 2
    ):
        return []
    writer = str(settings.scenario_writer)
    conflicts = judge_conflicts(writer, entries, role="scenario writer")
    if conflicts and not config.allow_contestant_judge:
        raise ValueError(
            "; ".join(conflicts)
            + ": a contestant that writes its own test prompts is a leak (it would be tested on requests it "
            "chose). Pick another adherence.scenario_writer (--scenario-writer), or pass "
            "--allow-contestant-judge to run anyway (the report will say so)."
        )
    return conflicts


def check_model_spec(spec: str) -> None:
    """A local model must be a folder with config.json; say what to pass instead when it is not."""
    if spec.startswith("openai:"):
        if "#" not in spec:
            raise ValueError(f"model {spec!r}: expected openai:<base_url>#<model name>")
        return
    if _identity(spec) == "smollm2":
        return
    path = Path(spec).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"model {spec!r}: {path} is not a Hugging Face model folder (no config.json). Pass 'smollm2' for "
            "the bundled model, a folder written by `ccai train`, or openai:<base_url>#<model>."
        )


def default_backend_factory(config: EvalConfig) -> BackendFactory:
    def make(spec: str) -> Any:
        from ccai.models.backends import make_backend

        return make_backend(spec, device=config.device, batch_size=config.batch_size)

    return make


def build_tasks(config: EvalConfig) -> dict[str, Task]:
    makers: dict[str, Callable[[], Task]] = {
        "mmlu": lambda: MMLU(shots=config.mmlu.shots, batch_size=config.batch_size),
        "gsm8k": lambda: GSM8K(
            shots=config.gsm8k.shots,
            max_new_tokens=config.gsm8k.max_new_tokens,
            batch_size=config.batch_size,
            form=config.gsm8k.form,
        ),
        "bbq": lambda: BBQ(batch_size=config.batch_size),
        "opinionqa": lambda: OpinionQA(batch_size=config.batch_size),
        "safety": lambda: Safety(
            max_new_tokens=config.answers.max_new_tokens,
            batch_size=config.batch_size,
            heldout=config.heldout_split(),
        ),
    }
    return {name: makers[name]() for name in config.tasks if name in makers}


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )


def evaluate(
    config: EvalConfig,
    out: Path | str,
    *,
    backend_factory: BackendFactory | None = None,
    show_progress: bool = True,
) -> EvalResult:
    """Run ``config`` and write ``out``/results.json, report.html, records/*.jsonl and the run manifest."""
    entries = parse_models(config.models)
    check_judge(config, entries)
    check_writer(config, entries)
    if "adherence" in config.tasks and config.adherence.constitutions:
        parse_constitutions(config.adherence.constitutions)  # a bad file fails before anything is written
    if backend_factory is None:  # fail before anything is written
        specs = [e.spec for e in entries] + ([config.judge] if config.judge else [])
        settings = config.adherence
        if "adherence" in config.tasks and settings.constitutions and settings.generated_count():
            specs.append(str(settings.scenario_writer))
        for spec in specs:
            check_model_spec(spec)
    factory = backend_factory or default_backend_factory(config)
    if config.threads:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(config.threads)
        try:
            return _evaluate(config, out, entries, factory, show_progress)
        finally:
            torch.set_num_threads(previous)
    return _evaluate(config, out, entries, factory, show_progress)


def _evaluate(
    config: EvalConfig,
    out: Path | str,
    entries: list[ModelEntry],
    factory: BackendFactory,
    show_progress: bool,
) -> EvalResult:
    from ccai.datasets import data_dir

    tasks = build_tasks(config)
    dimensions = [t for t in config.tasks if t in MULTI_MODEL_TASKS]
    samples: dict[str, list[Sample]] = {
        name: task.sample(config.limit_for(name), config.seed) for name, task in tasks.items()
    }
    for dimension in dimensions:
        samples[dimension] = stratified_sample(
            load_prompts(dimension, config.heldout_split()),
            lambda s: s.stratum,
            config.limit_for(dimension),
            config.seed,
        )
    adherence = _adherence_plan(config, entries)
    if isinstance(adherence, str):
        skipped_adherence, adherence = adherence, None
    else:
        skipped_adherence = None
    inputs = sorted({_task_folder(name) for name in list(tasks) + dimensions})
    if adherence is not None:
        inputs = sorted({*inputs, "hh_rlhf", "alpaca_eval"})
    if "safety" in tasks:
        inputs = sorted({*inputs, "harmbench", "safety_labels"})
    if (dimensions or adherence) and len(entries) >= 2 and config.agreement_pairs:
        inputs = sorted({*inputs, "hh_rlhf", "helpfulness_prefs"})
    run = RunDir.create(
        out,
        dump_config(config),
        seed=config.seed,
        stage="evaluation",
        inputs=[data_dir() / folder for folder in inputs]
        + [Path(spec.partition("=")[2] or spec) for spec in config.adherence.constitutions if adherence],
    )
    for name, items in samples.items():
        run.log("sample", task=name, n=len(items), ids=[s.id for s in items])
    results: dict[str, Any] = {
        "models": [{"label": e.label, "spec": e.spec, "identity": e.identity} for e in entries],
        "seed": config.seed,
        "limit": config.limit,
        "limits": config.limits,
        "tasks": config.tasks,
        "samples": {name: [s.id for s in items] for name, items in samples.items()},
        "measures": {},
        "details": {},
        "reused": {},
        "skipped": {},
        "timings": {},
        "rows": [
            {"key": f"{name}.{key}", "label": label, "higher_is_better": better}
            for name, task in tasks.items()
            for key, label, better in task.table_rows
        ],
    }
    if skipped_adherence:
        results["skipped"]["adherence"] = skipped_adherence
    records_dir = run.path / "records"
    records_dir.mkdir(exist_ok=True)
    probes: list[Item] = []
    if adherence is not None:
        written = _write_adherence(adherence, config, entries, factory, results, run)
        probes = _draw_adherence(adherence, config, written)
        results["samples"]["adherence"] = [i.key for i in probes]
        run.log("sample", task="adherence", n=len(probes), ids=[i.key for i in probes])
        _write_jsonl(records_dir / "adherence__prompts.jsonl", [i.to_dict() for i in probes])
    adherence_answers: dict[str, dict[str, str]] = {}
    answers: dict[str, dict[str, dict[str, str]]] = {d: {} for d in dimensions}
    done: dict[tuple[str, str], tuple[str, Any]] = {}
    outputs: dict[str, dict[str, Any]] = {name: {} for name in tasks}

    progress = _progress() if show_progress else None
    if progress is not None:
        progress.start()
    try:
        for index, entry in enumerate(entries):
            backend = None
            for name, task in tasks.items():
                key = (entry.identity, name)
                if task.deterministic and key in done:
                    source, output = done[key]
                    results["reused"].setdefault(entry.label, {})[name] = source
                    run.log("reuse", model=entry.label, task=name, source=source)
                else:
                    if backend is None:
                        backend = _load(factory, entry, run)
                    output = _run_task(task, backend, samples[name], entry, config, progress, run)
                    if isinstance(output, str):
                        results["skipped"].setdefault(entry.label, {})[name] = output
                        continue
                    done[key] = (entry.label, output)
                outputs[name][entry.label] = output
                _store(results, records_dir, name, entry.label, output)
            for dimension in dimensions if len(entries) >= 2 else []:
                if backend is None:
                    backend = _load(factory, entry, run)
                answers[dimension][entry.label] = _answers(
                    backend, samples[dimension], config, index, entry, progress, run, dimension
                )
            if probes:
                if backend is None:
                    backend = _load(factory, entry, run)
                adherence_answers[entry.label] = _answers(
                    backend, _answer_samples(probes), config, index, entry, progress, run, "adherence"
                )
            _release(backend)
        if (dimensions or probes) and len(entries) >= 2:
            judge_spec = str(config.judge)
            conflicts = judge_conflicts(judge_spec, entries)
            judge = _load(factory, ModelEntry("judge", judge_spec, _identity(judge_spec)), run)
            results["judge"] = judge_spec
            results["judge_check"] = {
                "independent": not conflicts,
                "conflicts": conflicts,
                "overridden": bool(conflicts) and config.allow_contestant_judge,
                "mode": config.judge_mode,
                "tie_band": config.tie_band,
                "text_verdicts": config.judge_text_verdicts,
            }
            pairs = _human_pairs(dimensions or list(MULTI_MODEL_TASKS), config)
            for dimension, items in pairs.items():
                _agreement(results, "judge", judge_spec, judge, dimension, items, config, progress, run)
            for dimension in dimensions:
                prompts = {s.id: s.data["prompt"] for s in samples[dimension]}
                n_jobs = len(prompts) * len(entries) * (len(entries) - 1)
                bar = progress.add_task(f"judge {dimension}", total=n_jobs) if progress else None
                started = time.time()
                try:
                    records = judge_pairs(
                        judge,
                        prompts,
                        answers[dimension],
                        dimension,
                        config.batch_size,
                        progress=lambda n, b=bar: progress.advance(b, n) if progress else None,
                        text_verdicts=config.judge_text_verdicts,
                    )
                except Exception as exc:
                    reason = skip_reason(judge_spec, CHOICE_NEEDS, exc)
                    if reason is None:
                        raise
                    reason = f"judge {reason}; pick a judge that gives them with --judge"
                    results["skipped"].setdefault("judge", {})[dimension] = reason
                    run.log("skip", model="judge", task=dimension, reason=reason)
                    continue
                table = elo_table(
                    [e.label for e in entries],
                    records,
                    dimension,
                    seed=config.seed,
                    n_boot=config.bootstrap,
                    mode=config.judge_mode,
                    tie_band=config.tie_band,
                )
                results["details"][dimension] = table.to_dict()
                results["timings"][f"judge/{dimension}"] = round(time.time() - started, 1)
                _write_jsonl(records_dir / f"{dimension}__judgements.jsonl", records)
                _write_jsonl(
                    records_dir / f"{dimension}__answers.jsonl",
                    [
                        {
                            "id": sid,
                            "prompt": prompts[sid],
                            **{lab: answers[dimension][lab][sid] for lab in answers[dimension]},
                        }
                        for sid in prompts
                    ],
                )
                run.log("elo", dimension=dimension, ratings=table.ratings)
            if probes and adherence is not None:
                _judge_adherence(
                    results,
                    judge,
                    judge_spec,
                    adherence,
                    probes,
                    adherence_answers,
                    entries,
                    config,
                    progress,
                    run,
                    records_dir,
                )
            _release(judge)
            _labeller_agreement(results, entries, judge_spec, pairs, factory, config, progress, run)
        elif dimensions:
            results["skipped"]["pairwise"] = "pairwise comparisons need at least two models"
    finally:
        if progress is not None:
            progress.stop()

    results["paired"] = paired_table(tasks, outputs, results, entries, config)
    results = clean(results)
    run.write_json("results.json", results)
    from ccai.evaluation.report import write_report

    write_report(results, run.path / "report.html")
    run.finish(models=[e.label for e in entries], tasks=config.tasks)
    return EvalResult(run.path, results)


def paired_table(
    tasks: dict[str, Task],
    outputs: dict[str, dict[str, Any]],
    results: dict[str, Any],
    entries: list[ModelEntry],
    config: EvalConfig,
) -> dict[str, dict[str, Any]]:
    """Every measure's difference to the reference (first) model, paired over the same items, with TOST."""
    reference = entries[0].label
    paired: dict[str, dict[str, Any]] = {}
    for name, task in tasks.items():
        statistics = task.statistics()
        base = outputs[name].get(reference)
        for key, _, better in task.table_rows:
            statistic = statistics.get(key)
            if statistic is None or base is None:
                continue
            for entry in entries[1:]:
                other = outputs[name].get(entry.label)
                if other is None:
                    continue
                paired.setdefault(f"{name}.{key}", {})[entry.label] = paired_difference(
                    base.records,
                    other.records,
                    statistic,
                    seed=config.seed,
                    n_boot=config.bootstrap,
                    margin=config.margin_for(f"{name}.{key}"),
                    higher_is_better=better,
                )
    for dimension in MULTI_MODEL_TASKS:
        table = results["details"].get(dimension)
        if not table:
            continue
        margin = config.margin_for(f"{dimension}.elo")
        for entry in entries[1:]:
            r = table["ratings"].get(entry.label, {})
            paired.setdefault(f"{dimension}.elo", {})[entry.label] = {
                "n": table["n_prompts"],
                "margin": margin,
                "delta": r.get("elo"),
                "low": r.get("low"),
                "high": r.get("high"),
                "low90": r.get("low90"),
                "high90": r.get("high90"),
                "verdict": verdict_of(
                    r.get("low"),
                    r.get("high"),
                    r.get("low90"),
                    r.get("high90"),
                    margin,
                    True,
                    table["n_prompts"],
                ),
            }
    return paired


def _human_pairs(dimensions: list[str], config: EvalConfig) -> dict[str, list[dict[str, Any]]]:
    """The seeded sample of held-out human preference pairs per dimension (same for every judge)."""
    n = config.agreement_pairs if config.limit is None else min(config.agreement_pairs, config.limit)
    if n <= 0:
        return {}
    out = {}
    for dimension in dimensions:
        pool = [Sample(p["id"], "", p) for p in load_human_pairs(dimension)]
        out[dimension] = [s.data for s in stratified_sample(pool, lambda s: s.stratum, n, config.seed)]
    return out


def _agreement(
    results: dict[str, Any],
    who: str,
    spec: str,
    backend: Any,
    dimension: str,
    pairs: list[dict[str, Any]],
    config: EvalConfig,
    progress: Any,
    run: RunDir,
) -> None:
    bar = (
        progress.add_task(f"{who}: agreement with people ({dimension})", total=2 * len(pairs))
        if progress
        else None
    )
    try:
        found = human_agreement(
            backend,
            pairs,
            dimension,
            batch_size=config.batch_size,
            tie_band=config.tie_band,
            text_verdicts=config.judge_text_verdicts,
            progress=lambda n: progress.advance(bar, n) if progress else None,
        )
    except Exception as exc:
        reason = skip_reason(spec, CHOICE_NEEDS, exc)
        if reason is None:
            raise
        results["skipped"].setdefault(who, {})[f"agreement/{dimension}"] = reason
        return
    found["model"] = spec
    results.setdefault("agreement", {}).setdefault(who, {})[dimension] = found
    run.log("agreement", who=who, dimension=dimension, agreement=found["agreement"], n=found["n"])


def _labeller_agreement(
    results: dict[str, Any],
    entries: list[ModelEntry],
    judge_spec: str,
    pairs: dict[str, list[dict[str, Any]]],
    factory: BackendFactory,
    config: EvalConfig,
    progress: Any,
    run: RunDir,
) -> None:
    """The same human-agreement check for each contestant's RL feedback model (the labeller), once each."""
    seen = {_identity(judge_spec): "judge"}
    for entry in entries:
        provenance = training_provenance(entry.spec)
        feedback = provenance.get("feedback_model")
        if provenance.get("preference_model"):
            results.setdefault("agreement_notes", []).append(
                f"{entry.label}: preference model {provenance['preference_model']} recorded; its agreement "
                "with people is not measured here (a reward model is not a pairwise judge)"
            )
        if not feedback or not pairs:
            continue
        who = f"RL labeller of {entry.label}"
        if _identity(feedback) in seen:
            measured = results.get("agreement", {}).get(seen[_identity(feedback)])
            if measured:
                results["agreement"][who] = measured
            continue
        seen[_identity(feedback)] = who
        try:
            check_model_spec(feedback)
        except (FileNotFoundError, ValueError) as exc:
            results["skipped"].setdefault(who, {})["agreement"] = str(exc)
            continue
        backend = _load(factory, ModelEntry(who, feedback, _identity(feedback)), run)
        for dimension, items in pairs.items():
            _agreement(results, who, feedback, backend, dimension, items, config, progress, run)
        _release(backend)


def _task_folder(name: str) -> str:
    return {
        "mmlu": "mmlu",
        "gsm8k": "gsm8k",
        "bbq": "bbq",
        "opinionqa": "opinionqa",
        "safety": "safety_prompts",
        "helpfulness": "alpaca_eval",
        "harmlessness": "hh_rlhf",
    }[name]


def _load(factory: BackendFactory, entry: ModelEntry, run: RunDir) -> Any:
    started = time.time()
    backend = factory(entry.spec)
    run.log("load", model=entry.label, spec=entry.spec, seconds=round(time.time() - started, 2))
    return backend


def _release(backend: Any) -> None:
    close = getattr(backend, "close", None)
    if callable(close):
        close()
    del backend
    gc.collect()


def _run_task(
    task: Task,
    backend: Any,
    items: list[Sample],
    entry: ModelEntry,
    config: EvalConfig,
    progress: Any,
    run: RunDir,
) -> Any:
    bar = progress.add_task(f"{entry.label}: {task.name}", total=len(items)) if progress else None
    started = time.time()
    try:
        output = task.evaluate(
            backend,
            items,
            seed=config.seed,
            progress=lambda n: progress.advance(bar, n) if progress else None,
        )
    except Exception as exc:
        reason = skip_reason(entry.spec, task.needs, exc)
        if reason is None:
            raise
        run.log("skip", model=entry.label, task=task.name, reason=reason)
        return reason
    seconds = round(time.time() - started, 1)
    run.log(
        "task",
        model=entry.label,
        task=task.name,
        seconds=seconds,
        measures={k: m.value for k, m in output.measures.items()},
    )
    output.details["seconds"] = seconds
    return output


def skip_reason(spec: str, needs: str, exc: Exception) -> str | None:
    """Why a task cannot run on this model, or None when ``exc`` is a real error that must surface.

    An OpenAI-compatible server may generate text yet not return the log-probabilities that scored tasks
    (and the pairwise judge) need: the hosted OpenAI API has no ``/v1/completions`` echo and rejects vLLM's
    ``continue_final_message``. Those tasks are skipped for that model, the others still run.
    """
    remote = spec.startswith("openai:")
    unavailable = remote and needs and isinstance(exc, ConnectionError | ValueError)
    if isinstance(exc, NotImplementedError) or unavailable:
        return f"needs {needs or 'an operation this backend lacks'}, which {spec} did not give ({exc})"
    if remote and isinstance(exc, ConnectionError):
        return f"the server failed ({exc})"
    return None


def _answers(
    backend: Any,
    items: list[Sample],
    config: EvalConfig,
    index: int,
    entry: ModelEntry,
    progress: Any,
    run: RunDir,
    dimension: str,
) -> dict[str, str]:
    """Sampled answers; each model slot has its own seed so a model compared with itself differs by chance."""
    bar = progress.add_task(f"{entry.label}: {dimension} answers", total=len(items)) if progress else None
    out: dict[str, str] = {}
    seed = config.seed + 1000 * (index + 1)
    for start in range(0, len(items), config.batch_size):
        chunk = items[start : start + config.batch_size]
        replies = backend.generate(
            [[{"role": "user", "content": s.data["prompt"]}] for s in chunk],
            max_new_tokens=config.answers.max_new_tokens,
            temperature=config.answers.temperature,
            top_p=config.answers.top_p,
            seed=seed + start,
        )
        out.update({s.id: r for s, r in zip(chunk, replies, strict=True)})
        if progress:
            progress.advance(bar, len(chunk))
    run.log("answers", model=entry.label, dimension=dimension, n=len(out), seed=seed)
    return out


def _store(results: dict[str, Any], records_dir: Path, name: str, label: str, output: Any) -> None:
    for key, measure in output.measures.items():
        results["measures"].setdefault(f"{name}.{key}", {})[label] = measure.to_dict()
    results["details"].setdefault(name, {})[label] = output.details
    if name == "safety":
        results.setdefault("side_by_side", {})[label] = {
            r["id"]: {
                "answer": r["answer"],
                "verdict": r["verdict"],
                "prompt": r["prompt"],
                "source": r["source"],
            }
            for r in output.records
        }
    _write_jsonl(records_dir / f"{name}__{_safe(label)}.jsonl", output.records)


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(clean(row), ensure_ascii=False) + "\n")
    tmp.replace(path)


# -- constitution adherence --------------------------------------------------------------------------

AdherencePlan = list[tuple[str, Any, list[Any]]]  # (name, Constitution, the principles evaluated)


def _adherence_plan(config: EvalConfig, entries: list[ModelEntry]) -> AdherencePlan | str | None:
    """The constitutions and principles to test, or why adherence is skipped (None: not asked for)."""
    if "adherence" not in config.tasks:
        return None
    if not config.adherence.constitutions:
        return (
            "no constitution given: pass --constitution NAME=FILE (a study passes its own), or leave "
            "adherence out with --tasks"
        )
    if len(entries) < 2:
        return "adherence compares each model with the reference (first) model: give at least two models"
    from ccai.evaluation.adherence import pick_principles

    limit = config.adherence.principles or config.limit_for("adherence")
    return [
        (name, constitution, pick_principles(constitution, limit, config.seed))
        for name, constitution in parse_constitutions(config.adherence.constitutions)
    ]


def _write_adherence(
    plan: AdherencePlan,
    config: EvalConfig,
    entries: list[ModelEntry],
    factory: BackendFactory,
    results: dict[str, Any],
    run: RunDir,
) -> dict[tuple[str, str], list[str]]:
    """The scenario writer's prompts per (constitution, principle); its report in ``results``.

    Loaded once, one seeded request per principle, then freed before the contestants load. Every
    principle's shortfall (fewer usable lines than asked for) is recorded with the reasons; nothing fills
    the gap.
    """
    from ccai.evaluation.adherence import write_prompts

    settings = config.adherence
    n = settings.generated_count()
    if not n:
        return {}
    spec = str(settings.scenario_writer)
    conflicts = judge_conflicts(spec, entries, role="scenario writer")
    writer = _load(factory, ModelEntry("scenario writer", spec, _identity(spec)), run)
    started = time.time()
    try:
        flat = [(name, p) for name, _, principles in plan for p in principles]
        replies = write_prompts(
            writer,
            [p for _, p in flat],
            n,
            batch_size=config.batch_size,
            seed=config.seed + 500,
            temperature=config.answers.temperature,
            top_p=config.answers.top_p,
        )
    finally:
        _release(writer)
    rows, written = [], {}
    for (name, principle), (reply, parsed) in zip(flat, replies, strict=True):
        written[(name, principle.id)] = parsed.prompts
        rows.append(
            {
                "constitution": name,
                "principle": principle.id,
                "requested": n,
                "written": len(parsed.prompts),
                "dropped": parsed.dropped,
                "shortfall": parsed.shortfall(n),
                "reply": reply,
            }
        )
    short = [r for r in rows if r["shortfall"]]
    results["adherence_writer"] = {
        "spec": spec,
        "requested": n,
        "written": sum(r["written"] for r in rows),
        "independent": not conflicts,
        "conflicts": conflicts,
        "overridden": bool(conflicts),
        "seconds": round(time.time() - started, 1),
        "shortfalls": [
            {k: r[k] for k in ("constitution", "principle", "written", "shortfall")} for r in short
        ],
    }
    _write_jsonl(run.path / "records" / "adherence__writer.jsonl", [{"writer": spec, **r} for r in rows])
    run.log(
        "writer",
        spec=spec,
        requested=n,
        written={f"{r['constitution']}/{r['principle']}": r["written"] for r in rows},
        short=len(short),
    )
    return written


def _draw_adherence(
    plan: AdherencePlan, config: EvalConfig, written: dict[tuple[str, str], list[str]] | None = None
) -> list[Item]:
    from ccai.constitution.dedup import default_embedder
    from ccai.evaluation.adherence import draw_items, prompt_pool

    settings = config.adherence
    pool = (
        prompt_pool(config.heldout_split(), settings.pool_size, config.seed) if settings.pool_prompts else []
    )
    return draw_items(
        [(name, principles) for name, _, principles in plan],
        pool,
        per_principle=settings.pool_prompts,
        scenarios=settings.scenarios,
        embedder=default_embedder() if pool else None,
        written=written,
        writer=settings.scenario_writer,
    )


def _answer_id(item: Item) -> str:
    """Pool prompts shared by several principles are answered once; scenarios and written prompts belong to
    one principle."""
    return item.key if item.origin in ("scenario", "generated") else item.prompt_id


def _answer_samples(items: list[Item]) -> list[Sample]:
    unique = {_answer_id(i): i.prompt for i in items}
    return [Sample(sid, "adherence", {"prompt": prompt}) for sid, prompt in unique.items()]


def _judge_adherence(
    results: dict[str, Any],
    judge: Any,
    judge_spec: str,
    plan: AdherencePlan,
    items: list[Item],
    answers: dict[str, dict[str, str]],
    entries: list[ModelEntry],
    config: EvalConfig,
    progress: Any,
    run: RunDir,
    records_dir: Path,
) -> None:
    """The judge compares every model with the reference under each item's principle; then the summary."""
    from ccai.evaluation.adherence import summarize

    labels = [e.label for e in entries]
    if any(label not in answers for label in labels):
        results["skipped"]["adherence"] = "not every model answered the adherence prompts"
        return
    comparison = {(name, p.id): p.comparison for name, _, principles in plan for p in principles}
    prompts = {i.key: i.prompt for i in items}
    keyed = {label: {i.key: answers[label][_answer_id(i)] for i in items} for label in labels}
    criteria = {i.key: comparison[(i.constitution, i.principle)] for i in items}
    n_jobs = 2 * len(prompts) * (len(labels) - 1)
    bar = progress.add_task("judge adherence", total=n_jobs) if progress else None
    started = time.time()
    try:
        records = judge_pairs(
            judge,
            prompts,
            keyed,
            "adherence",
            config.batch_size,
            progress=lambda n: progress.advance(bar, n) if progress else None,
            text_verdicts=config.judge_text_verdicts,
            criteria=criteria,
            reference=labels[0],
        )
    except Exception as exc:
        reason = skip_reason(judge_spec, CHOICE_NEEDS, exc)
        if reason is None:
            raise
        results["skipped"].setdefault("judge", {})["adherence"] = f"judge {reason}"
        return
    summary = summarize(
        plan, items, records, labels, seed=config.seed, n_boot=config.bootstrap, tie_band=config.tie_band
    )
    if results.get("adherence_writer"):
        summary["writer"] = results["adherence_writer"]
    results["details"]["adherence"] = summary
    results["timings"]["judge/adherence"] = round(time.time() - started, 1)
    _write_jsonl(
        records_dir / "adherence__judgements.jsonl",
        [{**r, "criterion": criteria[r["id"]]} for r in records],
    )
    _write_jsonl(
        records_dir / "adherence__answers.jsonl",
        [{"id": i.key, "prompt": i.prompt, **{lab: keyed[lab][i.key] for lab in labels}} for i in items],
    )
    run.log("adherence", constitutions=[c["name"] for c in summary["constitutions"]], n=len(records))
