"""The study's ``index.html``: a page a person reads, built only from the files the stages left in the folder.

Why a module of its own: the study runner and the stage commands change, the files they write are the
contract. Reading those files (and nothing in memory) means the page can be rebuilt for any study folder,
finished or not, and says what it shows and what did not run. Every figure is drawn here as inline SVG and
the page is one offline file (no CDN, no script), so it can be mailed or archived as it is.

Sections follow the CCAI paper's story: what the public said (analysis), what it became (constitution), what
the models were trained on (training), how they compare (evaluation, the paper's Table 1 side by side), and in
plain words what a small model can and cannot show.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ccai.files import atomic_write_text

TEMPLATES = Path(__file__).with_name("templates")
STAGES = ("analysis", "constitution", "training", "evaluation")
# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies); every series also has
# its own marker and dash pattern, so nothing depends on colour alone.
SERIES_STYLE = (
    {"colour": "#0072B2", "marker": "circle", "dash": ""},
    {"colour": "#D55E00", "marker": "square", "dash": "6 3"},
    {"colour": "#009E73", "marker": "triangle", "dash": "2 3"},
    {"colour": "#CC79A7", "marker": "diamond", "dash": "8 3 2 3"},
)
GAC_BINS = 20
PHASES = {"sl": "SL-CAI (supervised on revisions)", "pm": "preference model", "rl": "RL-CAI"}


class StudyReportError(ValueError):
    """A stage file exists but cannot be read; the message names the file (and line)."""


# -- reading ---------------------------------------------------------------------------------------------
def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StudyReportError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); rerun the stage that wrote it"
        ) from exc
    except UnicodeDecodeError as exc:
        raise StudyReportError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _json_lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise StudyReportError(f"{path}:{number}: not a JSON line ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise StudyReportError(f"{path}:{number}: expected a JSON object per line")
        rows.append(row)
    return rows


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise StudyReportError(f"{path}{where}: not valid YAML") from exc


def _mapping(path: Path, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StudyReportError(f"{path}: expected a JSON object at the top level")
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# -- formatting ------------------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 1) -> str:
    number = _number(value)
    if number is None:
        return "–"
    text = f"{number:,.{digits}f}"
    return text[1:] if text.startswith("-") and float(text.replace(",", "")) == 0 else text


def _int(value: Any) -> str:
    number = _number(value)
    return "–" if number is None else f"{int(round(number)):,}"


def _pct(value: Any) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:.0%}"


def _signed(value: float, digits: int) -> str:
    text = f"{value:+.{digits}f}"
    return "±0" if float(text) == 0 else text.replace("-", "−")


def _nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


# -- analysis --------------------------------------------------------------------------------------------
def _statements(path: Path) -> list[dict[str, Any]]:
    """``statements.csv`` rows with a readable GAC (id, gac, eligible)."""
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"statement_id", "gac"} - set(reader.fieldnames or [])
        if missing:
            raise StudyReportError(
                f"{path}: missing column(s) {sorted(missing)} (expected the analysis' statements.csv)"
            )
        for number, row in enumerate(reader, 2):
            text = (row.get("gac") or "").strip()
            if text in ("", "nan", "NaN"):
                continue
            gac = _number(text)
            if gac is None or not 0 <= gac <= 1:
                raise StudyReportError(f"{path}:{number}: gac: expected a number in [0, 1], got {text!r}")
            eligible = (row.get("eligible") or "True").strip().lower() not in ("false", "0", "")
            rows.append({"id": str(row["statement_id"]).strip(), "gac": gac, "eligible": eligible})
    return rows


def gac_histogram(
    gacs: list[tuple[float, bool]], threshold: float | None, bins: int = GAC_BINS
) -> dict[str, Any]:
    """Counts per GAC bin, split into statements the constitution kept and the rest, with SVG geometry."""
    kept = [0] * bins
    other = [0] * bins
    for gac, selected in gacs:
        index = min(int(gac * bins), bins - 1)
        (kept if selected else other)[index] += 1
    width, height, left, bottom, top, right = 640, 250, 48, 46, 16, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((k + o for k, o in zip(kept, other, strict=True)), default=0)
    ticks = _nice_ticks(0, max(peak, 1), 4)
    y_max = ticks[-1]

    def y(value: float) -> float:
        return round(top + plot_h - value / y_max * plot_h, 1)

    bar_w = plot_w / bins
    bars = []
    for i in range(bins):
        x = round(left + i * bar_w + 1, 1)
        w = round(bar_w - 2, 1)
        low_edge, high_edge = i / bins, (i + 1) / bins
        label = (
            f"GAC {low_edge:.2f}–{high_edge:.2f}: {kept[i] + other[i]} statements, "
            f"{kept[i]} in the constitution"
        )
        bars.append(
            {
                "x": x,
                "w": w,
                "other_y": y(other[i]),
                "other_h": round(y(0) - y(other[i]), 1),
                "kept_y": y(other[i] + kept[i]),
                "kept_h": round(y(other[i]) - y(other[i] + kept[i]), 1),
                "label": label,
                "range": f"{low_edge:.2f}–{high_edge:.2f}",
                "kept": kept[i],
                "other": other[i],
            }
        )
    line = None
    if threshold is not None:
        line = {"x": round(left + threshold * plot_w, 1), "label": f"threshold {threshold:.3f}"}
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "base": y(0),
        "bars": bars,
        "y_ticks": [{"y": y(t), "label": f"{t:g}"} for t in ticks],
        "x_ticks": [
            {"x": round(left + t * plot_w, 1), "label": f"{t:.1f}"} for t in (0, 0.2, 0.4, 0.6, 0.8, 1.0)
        ],
        "threshold": line,
        "total": len(gacs),
        "kept": sum(kept),
    }


def _analysis(out: Path, selected_ids: set[str] | None, threshold: float | None) -> dict[str, Any] | None:
    folder = out / "analysis"
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        return None
    summary = _mapping(summary_path, _json(summary_path))
    counts = summary.get("counts") or {}
    sizes = summary.get("group_sizes") or {}
    total = sum(_number(v) or 0 for v in sizes.values())
    groups = [
        {
            "name": _group_name(name),
            "size": _int(size),
            "share": _pct((_number(size) or 0) / total) if total else "–",
        }
        for name, size in sorted(sizes.items(), key=lambda item: str(item[0]))
    ]
    paper = summary.get("gac_above_paper_threshold") or {}
    if threshold is None:
        threshold = _number(paper.get("threshold"))
    histogram = None
    statements_path = folder / "statements.csv"
    if statements_path.is_file():
        rows = [r for r in _statements(statements_path) if r["eligible"]]
        chosen = selected_ids or set()
        histogram = gac_histogram([(r["gac"], r["id"] in chosen) for r in rows], threshold)
        histogram["has_selection"] = selected_ids is not None
    gac = (summary.get("gac") or {}).get("gac") or {}
    source = {
        "ccai": "ccai's own clustering",
        "polis": "Polis's clustering",
        "given": "the groups given in the export",
    }
    return {
        "participants_input": _int(counts.get("participants_input")),
        "participants": _int(counts.get("participants_in_analysis")),
        "votes": _int(counts.get("votes_in_analysis", counts.get("votes"))),
        "statements": _int(counts.get("statements_eligible", counts.get("statements_with_votes"))),
        "k": _int(summary.get("k")),
        "group_source": source.get(str(summary.get("group_source")), str(summary.get("group_source") or "–")),
        "groups": groups,
        "filters": [
            {
                "description": str(f.get("description") or f.get("name") or ""),
                "participants": _int(f.get("participants_removed")),
                "statements": _int(f.get("statements_removed")),
            }
            for f in summary.get("filters") or []
            if isinstance(f, dict)
        ],
        "gac_median": _fmt(gac.get("median"), 3),
        "paper_threshold": _fmt(paper.get("threshold"), 3) if paper else None,
        "above_paper_threshold": _int(paper.get("count")) if paper else None,
        "histogram": histogram,
        "report": "analysis/report.html" if (folder / "report.html").is_file() else None,
    }


# -- constitution ----------------------------------------------------------------------------------------
def _principle_text(principle: dict[str, Any]) -> str:
    return str(principle.get("comparison") or principle.get("text") or principle.get("id") or "")


def _constitution(out: Path) -> dict[str, Any] | None:
    folder = out / "constitution"
    public_path = folder / "public.json"
    if not public_path.is_file():
        return None
    public = _mapping(public_path, _json(public_path))
    principles = public.get("principles")
    if not isinstance(principles, list):
        raise StudyReportError(f"{public_path}: principles: expected a list")
    metadata = public.get("metadata") or {}
    selection = metadata.get("selection") or {}
    merge_settings = metadata.get("merge") or {}
    listed, merges, selected_ids = [], [], set()
    for index, p in enumerate(principles):
        if not isinstance(p, dict):
            raise StudyReportError(f"{public_path}: principles.{index}: expected an object")
        sources = [s for s in p.get("sources") or [] if isinstance(s, dict)]
        selected_ids.update(str(s.get("id")) for s in sources if s.get("kind", "statement") == "statement")
        tags = [str(t) for t in p.get("tags") or []]
        merge = (p.get("metadata") or {}).get("merge")
        listed.append(
            {
                "id": str(p.get("id", index + 1)),
                "text": _principle_text(p),
                "statements": len(sources),
                "standard": "inspired-by-standard" in tags,
                "merged": bool(merge),
                "tags": [t for t in tags if t != "inspired-by-standard"],
            }
        )
        if isinstance(merge, dict):
            merges.append(
                {
                    "id": str(merge.get("id") or p.get("id")),
                    "principle": _principle_text(p),
                    "members": [str(s.get("text") or s.get("id")) for s in sources],
                    "similarity": _fmt(merge.get("similarity"), 2),
                    "reviewed": bool(merge.get("reviewed")),
                }
            )
    reviews = sorted(
        p.relative_to(out).as_posix()
        for p in folder.glob("*review*")
        if p.is_file() and not p.name.startswith(".")
    )
    reviewed = merge_settings.get("reviewed")
    if reviewed is None and merges:
        reviewed = all(m["reviewed"] for m in merges)
    standard_path = folder / "standard.json"
    standard_count = None
    if standard_path.is_file():
        standard = _mapping(standard_path, _json(standard_path))
        standard_count = len(standard.get("principles") or [])
    overlap = sum(p["standard"] for p in listed)
    threshold = _number(selection.get("threshold"))
    gacs = [_number(s.get("gac")) for p in principles for s in p.get("sources") or [] if isinstance(s, dict)]
    gacs = [g for g in gacs if g is not None]
    links = [
        (name, f"constitution/{file}")
        for name, file in (
            ("comparison with the standard constitution", "compare_standard.html"),
            ("the public constitution", "public.html"),
            ("the standard constitution", "standard.html"),
        )
        if (folder / file).is_file()
    ]
    links += [(f"merge review file ({Path(r).name})", r) for r in reviews]
    return {
        "name": str(public.get("name") or "public"),
        "version": str(public.get("version") or ""),
        "description": str(public.get("description") or ""),
        "hash": str(public.get("content_hash") or "")[:12],
        "principles": listed,
        "count": len(listed),
        "statements_selected": len(selected_ids),
        "selected_ids": selected_ids,
        "threshold": threshold,
        "threshold_text": _fmt(threshold, 3) if threshold is not None else None,
        "count_rule": selection.get("count"),
        "lowest_gac": _fmt(min(gacs), 3) if gacs else None,
        "considered": _int(selection.get("considered")),
        "merges": merges,
        "merge_similarity": _fmt(merge_settings.get("similarity"), 2),
        "reviewed": bool(reviewed),
        "review_files": reviews,
        "rewriter": str(metadata.get("rewriter") or "–"),
        "overlap": overlap,
        "overlap_share": _pct(overlap / len(listed)) if listed else "–",
        "standard_count": standard_count,
        "links": links,
    }


# -- training --------------------------------------------------------------------------------------------
def _loss_series(metrics: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Training loss per optimiser step for each phase (sl, pm, rl); evaluation rows are left out."""
    series: dict[str, list[tuple[float, float]]] = {}
    for row in metrics:
        step, loss = _number(row.get("step")), _number(row.get("loss"))
        if step is None or loss is None:
            continue
        series.setdefault(str(row.get("stage", "?")), []).append((step, loss))
    return series


def _phase_times(metrics: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Seconds of training and steps per phase, from the trainer's closing row (``train_runtime``)."""
    times: dict[str, dict[str, Any]] = {}
    for row in metrics:
        runtime, step = _number(row.get("train_runtime")), _number(row.get("step"))
        if runtime is not None and step:
            times[str(row.get("stage", "?"))] = {"seconds": runtime, "steps": int(step)}
    return times


def line_chart(series: list[dict[str, Any]], title: str) -> dict[str, Any] | None:
    """SVG geometry for loss-per-step lines (one per run); None when there is nothing to draw."""
    points = [pt for s in series for pt in s["points"]]
    if not points:
        return None
    width, height, left, right, top, bottom = 420, 250, 66, 12, 14, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    if x_hi <= x_lo:
        x_hi = x_lo + 1
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    pad = (y_hi - y_lo) * 0.08 or abs(y_hi) * 0.05 or 0.1
    y_ticks = _nice_ticks(y_lo - pad, y_hi + pad, 4)
    x_ticks = [t for t in _nice_ticks(x_lo, x_hi, 5) if x_lo <= t <= x_hi and float(t).is_integer()]
    x_ticks = x_ticks or [x_lo, x_hi]
    y_min, y_max = y_ticks[0], y_ticks[-1]

    def sx(value: float) -> float:
        return round(left + (value - x_lo) / (x_hi - x_lo) * plot_w, 1)

    def sy(value: float) -> float:
        return round(top + plot_h - (value - y_min) / (y_max - y_min) * plot_h, 1)

    drawn = []
    for index, s in enumerate(series):
        style = SERIES_STYLE[index % len(SERIES_STYLE)]
        xy = [(sx(x), sy(y)) for x, y in s["points"]]
        drawn.append(
            {
                **style,
                "name": s["name"],
                "polyline": " ".join(f"{x},{y}" for x, y in xy),
                "markers": xy if len(xy) <= 80 else [],
                "first": _fmt(s["points"][0][1], 4),
                "last": _fmt(s["points"][-1][1], 4),
                "steps": len(s["points"]),
            }
        )
    step_digits = 0 if all(float(t).is_integer() for t in x_ticks) else 1
    return {
        "title": title,
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "bottom": top + plot_h,
        "series": drawn,
        "y_ticks": [{"y": sy(t), "label": f"{t:g}"} for t in y_ticks],
        "x_ticks": [{"x": sx(t), "label": f"{t:.{step_digits}f}"} for t in x_ticks],
        "description": "; ".join(
            f"{d['name']}: {d['steps']} logged steps, loss from {d['first']} to {d['last']}" for d in drawn
        )
        + (
            " (the runs' losses are identical, so one line hides the other)"
            if len(drawn) > 1 and len({d["polyline"] for d in drawn}) == 1
            else ""
        ),
    }


def _model_card_links(run: Path, out: Path) -> list[tuple[str, str]]:
    cards = []
    for phase, label in (("sl", "SL-CAI"), ("pm", "preference"), ("rl", "RL-CAI")):
        for candidate in (run / f"{phase}_model_card.md", run / phase / "model" / "README.md"):
            if candidate.is_file():
                cards.append((f"{label} model card", candidate.relative_to(out).as_posix()))
                break
    return cards


def _training_run(run: Path, out: Path) -> dict[str, Any]:
    state = _mapping(run / "state.json", _json(run / "state.json")) if (run / "state.json").is_file() else {}
    done = state.get("done") or {}
    config = _yaml(run / "config.yaml") if (run / "config.yaml").is_file() else {}
    config = config if isinstance(config, dict) else {}
    manifest = (
        _mapping(run / "manifest.json", _json(run / "manifest.json"))
        if (run / "manifest.json").is_file()
        else {}
    )
    metrics = _json_lines(run / "metrics.jsonl") if (run / "metrics.jsonl").is_file() else []
    data_cfg = config.get("data") or {}
    rl_cfg = config.get("rl") or {}
    split = done.get("split") or {}
    sl_data = done.get("sl_data") or {}
    labels = done.get("rl_labels") or {}
    rl_train = done.get("rl_train") or {}
    counts = [
        ("red-team prompts trained on", split.get("red_team")),
        ("helpful prompts trained on", split.get("helpful")),
        ("SL-CAI rows generated (prompt, critique, revision)", sl_data.get("rows")),
        ("SL-CAI rows fine-tuned on (passed the quality gates)", sl_data.get("sft_rows")),
        ("RL-CAI response pairs", (done.get("rl_pairs") or {}).get("pairs")),
        ("pairs labelled by AI feedback", labels.get("pairs")),
        ("pairs the preference model trained on", (done.get("pm_train") or {}).get("rows")),
        ("pairs RL-CAI trained on", rl_train.get("rows")),
    ]
    filtered = []
    if data_cfg.get("max_prompt_chars") is not None:
        filtered.append(
            f"prompts longer than {_int(data_cfg['max_prompt_chars'])} characters are skipped before sampling"
        )
    if split.get("heldout_red_team") is not None:
        filtered.append(
            f"{_int(split.get('heldout_red_team'))} red-team and {_int(split.get('heldout_helpful'))} "
            f"helpful prompts held out for evaluation (fraction {_fmt(data_cfg.get('heldout_fraction'), 2)}, "
            "never trained on)"
        )
    if sl_data.get("unchanged_revisions") is not None:
        filtered.append(
            f"{_int(sl_data['unchanged_revisions'])} of {_int(sl_data.get('rows'))} revisions were "
            "identical to the first answer (kept; the critique changed nothing)"
        )
    dropped = {k: v for k, v in (sl_data.get("rows_dropped") or {}).items() if v}
    if dropped:
        reasons = ", ".join(f"{_int(v)} {k.replace('_', ' ')}" for k, v in dropped.items())
        filtered.append(
            f"{_int(sum(dropped.values()))} of {_int(sl_data.get('rows'))} SL-CAI rows left out of "
            f"fine-tuning by the quality gates: {reasons}"
        )
    if sl_data.get("sft_rows_trimmed"):
        filtered.append(
            f"{_int(sl_data['sft_rows_trimmed'])} of the {_int(sl_data.get('sft_rows'))} rows fine-tuned on "
            "are replies cut off at the token limit, trimmed back to their last complete sentence"
        )
    rejected = {k: v for k, v in (sl_data.get("revisions_rejected") or {}).items() if v}
    if rejected:
        filtered.append(
            f"{_int(sum(rejected.values()))} of {_int(sl_data.get('revisions_checked'))} revisions rejected: "
            + ", ".join(f"{_int(v)} {k.replace('_', ' ')}" for k, v in rejected.items())
        )
    labelled, trained = _number(labels.get("pairs")), _number(rl_train.get("rows"))
    if labelled is not None and trained is not None and trained < labelled:
        filtered.append(
            f"{_int(labelled - trained)} of {_int(labelled)} preference pairs dropped: the feedback's "
            "margin was below "
            f"rl.min_margin={_fmt(rl_cfg.get('min_margin'), 2)} (soft_labels={rl_cfg.get('soft_labels')})"
        )
    series = _loss_series(metrics)
    times = _phase_times(metrics)
    phases = []
    for key, name in PHASES.items():
        result = done.get(f"{key}_train") or {}
        timing = times.get(key)
        if not result and not timing and key not in series:
            continue
        phases.append(
            {
                "name": name,
                "key": key,
                "steps": _int(result.get("steps") or (timing or {}).get("steps")),
                "loss_before": _fmt(result.get("loss_before"), 4),
                "train_loss": _fmt(result.get("train_loss"), 4),
                "loss_after": _fmt(result.get("loss_after"), 4),
                "seconds": _fmt((timing or {}).get("seconds"), 1),
                "per_step": _fmt(timing["seconds"] / timing["steps"], 2) if timing else "–",
            }
        )
    generation = None
    if sl_data.get("seconds") is not None:
        generation = (
            f"{_fmt(sl_data.get('seconds'), 0)} s ({_fmt(sl_data.get('tokens_per_second'), 1)} tokens/s)"
        )
    finished = "rl_train" in done or bool(manifest.get("final_model"))
    feedback = _number(labels.get("mean_soft_label"))
    return {
        "name": run.name,
        "constitution": Path(str(config.get("constitution") or "")).name or "–",
        "model": str(config.get("model") or "–"),
        "finished": finished,
        "stages_done": [k for k in done],
        "counts": [(label, _int(v)) for label, v in counts if v is not None],
        "filtered": filtered,
        "phases": phases,
        "series": series,
        "generation": generation,
        "seconds": _fmt(manifest.get("seconds"), 0) if manifest.get("seconds") is not None else None,
        "feedback_label": _fmt(feedback, 3) if feedback is not None else None,
        "feedback_near_coin": feedback is not None and abs(feedback - 0.5) < 0.05,
        "pm_harmless": _agreement(done.get("pm_train") or {}, "harmless"),
        "pm_helpful": _agreement(done.get("pm_train") or {}, "helpful"),
        "cards": _model_card_links(run, out),
    }


def _group_name(name: Any) -> str:
    """Group 0, 1, ... as the analysis report names them: A, B, ... (Polis's convention)."""
    text = str(name)
    return chr(ord("A") + int(text)) if text.isdigit() and int(text) < 26 else text


def _agreement(pm: dict[str, Any], kind: str) -> str | None:
    """'0.53 of 32 (chance 0.5)': how often the preference model prefers what people preferred."""
    accuracy, pairs = _number(pm.get(f"heldout_{kind}_accuracy")), pm.get(f"heldout_{kind}_pairs")
    if accuracy is None:
        return None
    return f"{_fmt(accuracy, 2)} of {_int(pairs)} pairs (chance 0.5)"


def _training(out: Path, order: list[str] | None = None) -> dict[str, Any] | None:
    """The training runs, in ``order`` (the evaluation's model order, so the runs' columns follow Table 1's)
    and by folder name for runs the evaluation does not list."""
    folder = out / "training"
    if not folder.is_dir():
        return None
    order = order or []
    runs = [
        _training_run(run, out)
        for run in sorted(
            folder.iterdir(), key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name)
        )
        if run.is_dir() and any((run / f).is_file() for f in ("state.json", "manifest.json", "config.yaml"))
    ]
    charts = []
    for key, name in PHASES.items():
        chart = line_chart(
            [{"name": r["name"], "points": r["series"][key]} for r in runs if r["series"].get(key)],
            f"{name}: training loss per step",
        )
        if chart:
            chart["id"] = f"loss-{key}"
            charts.append(chart)
    labels = list(dict.fromkeys(label for r in runs for label, _ in r["counts"]))
    data = [(label, [dict(r["counts"]).get(label, "–") for r in runs]) for label in labels]
    about = [
        ("constitution", [r["constitution"] for r in runs]),
        ("base model", [r["model"] for r in runs]),
        (
            "finished",
            [
                "yes"
                if r["finished"]
                else "no (stages done: " + (", ".join(r["stages_done"]) or "none") + ")"
                for r in runs
            ],
        ),
        ("seconds in all", [r["seconds"] or "–" for r in runs]),
        ("SL-CAI data generation", [r["generation"] or "–" for r in runs]),
        ("mean AI-feedback preference label (0.5 = coin flip)", [r["feedback_label"] or "–" for r in runs]),
        ("preference model vs people: held-out harmless pairs", [r["pm_harmless"] or "–" for r in runs]),
        ("preference model vs people: held-out helpful pairs", [r["pm_helpful"] or "–" for r in runs]),
    ]
    common = [f for f in runs[0]["filtered"] if all(f in r["filtered"] for r in runs)] if runs else []
    own = [(r["name"], [f for f in r["filtered"] if f not in common]) for r in runs]
    return {
        "runs": runs,
        "charts": charts,
        "data": data,
        "about": about,
        "filtered_common": common,
        "filtered_own": own,
    }


# -- evaluation ------------------------------------------------------------------------------------------
def model_order(results: dict[str, Any]) -> list[str]:
    """The model labels in the order the evaluation lists them: the reference (first) model, then the rest.

    Why not sort by name: the evaluation report shows its columns in ``results.json``'s order and measures
    every difference against its first model; the index must show the same columns in the same order, and
    a name-based rule (base / standard / rest) disagreed with it as soon as the study listed public first."""
    labels = [str(m.get("label")) for m in results.get("models") or [] if isinstance(m, dict)]
    return list(dict.fromkeys(labels))


def table_one(results: dict[str, Any]) -> dict[str, Any]:
    """Rows = measures, columns = models in the evaluation's order (the reference first, see
    :func:`model_order`); each cell its value, interval and delta to the reference.

    The delta is the point estimate minus the base model's. ``direction`` says whether it moves the way the
    measure calls better, and ``overlap`` whether the two 95 % intervals overlap (if they do, the difference
    may well be noise; if they do not, it is unlikely to be)."""
    labels = model_order(results)
    base = labels[0] if labels else None
    rows = []

    def cell(
        m: dict[str, Any] | None, ref: dict[str, Any] | None, label: str, better: bool | None, digits: int
    ):
        if not isinstance(m, dict) or _number(m.get("value")) is None:
            return {"value": "–", "interval": "", "delta": "", "verdict": ""}
        value = _number(m["value"])
        low, high = _number(m.get("low")), _number(m.get("high"))
        out = {
            "value": _fmt(value, digits),
            "interval": f"[{_fmt(low, digits)}, {_fmt(high, digits)}]"
            if low is not None and high is not None
            else "",
            "delta": "",
            "verdict": "",
        }
        if label != base and isinstance(ref, dict) and _number(ref.get("value")) is not None:
            delta = value - _number(ref["value"])
            out["delta"] = _signed(delta, digits)
            words = []
            if better is not None and round(delta, digits) != 0:
                words.append("better" if (delta > 0) == better else "worse")
            ref_low, ref_high = _number(ref.get("low")), _number(ref.get("high"))
            if None not in (low, high, ref_low, ref_high):
                words.append(
                    "intervals overlap" if low <= ref_high and ref_low <= high else "intervals apart"
                )
            out["verdict"] = ", ".join(words)
        return out

    measures = results.get("measures") or {}
    for row in results.get("rows") or []:
        values = measures.get(row.get("key")) or {}
        if not values:
            continue
        key = str(row.get("key"))
        digits = 3 if "representativeness" in key or "refusal_mass" in key else 1
        better = row.get("higher_is_better")
        n = next(
            (v.get("n") for v in values.values() if isinstance(v, dict) and v.get("n") is not None), None
        )
        rows.append(
            {
                "label": str(row.get("label") or key),
                "better": {True: "higher is better", False: "lower is better"}.get(
                    better, "no better direction"
                ),
                "cells": [cell(values.get(lab), values.get(base), lab, better, digits) for lab in labels],
                "n": _int(n) if n is not None else "–",
            }
        )
    for dimension in ("helpfulness", "harmlessness"):
        table = (results.get("details") or {}).get(dimension)
        if not isinstance(table, dict):
            continue
        ratings = table.get("ratings") or {}
        as_measure = {
            lab: {"value": r.get("elo"), "low": r.get("low"), "high": r.get("high")}
            for lab, r in ratings.items()
            if isinstance(r, dict)
        }
        rows.append(
            {
                "label": f"{dimension.capitalize()} Elo (pairwise, judged by a model)",
                "better": "higher is better",
                "cells": [cell(as_measure.get(lab), as_measure.get(base), lab, True, 1) for lab in labels],
                "n": _int(table.get("n_prompts")),
            }
        )
    skipped = []
    for who, what in (results.get("skipped") or {}).items():
        if isinstance(what, dict):
            skipped += [f"{who} / {task}: {reason}" for task, reason in what.items()]
        else:
            skipped.append(f"{who}: {what}")
    specs = {
        str(m.get("label")): str(m.get("spec")) for m in results.get("models") or [] if isinstance(m, dict)
    }
    return {"labels": labels, "specs": specs, "rows": rows, "skipped": skipped}


def _evaluation(out: Path) -> dict[str, Any] | None:
    folder = out / "evaluation"
    path = folder / "results.json"
    if not path.is_file():
        return None
    results = _mapping(path, _json(path))
    table = table_one(results)
    return {
        **table,
        "limit": results.get("limit"),
        "seed": results.get("seed"),
        "tasks": [str(t) for t in results.get("tasks") or []],
        "judge": results.get("judge"),
        "judge_conflicts": (results.get("judge_check") or {}).get("conflicts") or [],
        "judge_agreement": _judge_agreement(results),
        "report": "evaluation/report.html" if (folder / "report.html").is_file() else None,
        "adherence": adherence_summary(
            results, "evaluation/report.html" if (folder / "report.html").is_file() else None
        ),
    }


def _win_cell(figure: Any, n: int | None) -> dict[str, str]:
    """A win rate vs the reference as value / interval / side of 0.5, from the adherence summary as stored."""
    if not isinstance(figure, dict):
        return {"value": "–", "interval": "", "side": "", "n": ""}
    value = _number(figure.get("win_rate", figure.get("value")))
    low, high = _number(figure.get("low")), _number(figure.get("high"))
    side = ""
    if low is not None and high is not None:
        side = "above 0.5" if low > 0.5 else "below 0.5" if high < 0.5 else "interval spans 0.5"
    return {
        "value": _fmt(value, 2),
        "interval": f"[{_fmt(low, 2)}, {_fmt(high, 2)}]" if low is not None and high is not None else "",
        "side": side,
        "n": _int(n) if n else "",
    }


def _prompts_judged(constitution: dict[str, Any], model: str) -> int:
    """How many judged prompts the model's figure rests on: the principle rows' own ``n``, added up."""
    total = 0
    for row in constitution.get("principles") or []:
        cell = (row.get("adherence") or {}).get(model) if isinstance(row, dict) else None
        if isinstance(cell, dict) and _number(cell.get("n")) is not None:
            total += int(cell["n"])
    return total


def _apart(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """Whether two stored intervals do not overlap (None when either is missing)."""
    bounds = [_number(x.get(k)) for x in (a, b) for k in ("low", "high")]
    if None in bounds:
        return None
    a_low, a_high, b_low, b_high = bounds
    return a_high < b_low or b_high < a_low


def adherence_summary(results: dict[str, Any], report: str | None) -> dict[str, Any] | None:
    """The index page's short adherence view, read from ``details.adherence`` as the evaluation wrote it.

    Why nothing is recomputed: the evaluation's summary holds the bootstrap intervals (drawn once, paired
    across groups); refitting here would give a second, different set of numbers for the same question.
    This only picks the headline rows (equal weight and per opinion group) and says plainly when the task
    was skipped or the judge is no better than chance. None when the evaluation never asked for it."""
    skipped = []
    for who, what in (results.get("skipped") or {}).items():
        if who == "adherence":
            skipped.append(str(what))
        elif isinstance(what, dict) and "adherence" in what:
            skipped.append(f"{who}: {what['adherence']}")
    found = (results.get("details") or {}).get("adherence")
    tasks = [str(t) for t in results.get("tasks") or []]
    if not isinstance(found, dict) and not skipped and "adherence" not in tasks:
        return None
    link = f"{report}#adherence" if report else None
    if not isinstance(found, dict) or not found.get("constitutions"):
        if not skipped:
            skipped.append("the evaluation recorded no adherence result")
        return {"skipped": skipped, "constitutions": [], "link": None, "reference": None, "models": []}
    reference, models = str(found.get("reference")), [str(m) for m in found.get("challengers") or []]
    listed = model_order(results)  # the columns in Table 1's order, whatever order the summary kept
    models.sort(key=lambda m: listed.index(m) if m in listed else len(listed))
    blocks, overall_by_model = [], {m: [] for m in models}
    for c in found["constitutions"]:
        if not isinstance(c, dict):
            continue
        name = str(c.get("name"))
        n = {m: _prompts_judged(c, m) for m in models}
        rows = [
            {
                "label": "all principles tested, equal weight",
                "cells": [_win_cell((c.get("overall") or {}).get(m), n[m]) for m in models],
            }
        ]
        by_group = c.get("by_group") or {}
        for group in c.get("groups") or []:
            rows.append(
                {
                    "label": f"weighted by group {_group_name(group)}'s agreement",
                    "cells": [
                        _win_cell(((by_group.get(m) or {}).get("groups") or {}).get(str(group)), n[m])
                        for m in models
                    ],
                }
            )
        notes = []
        for m in models:
            figure = (c.get("overall") or {}).get(m)
            if isinstance(figure, dict) and _number(figure.get("value")) is not None:
                overall_by_model[m].append((name, figure))
            view = by_group.get(m) or {}
            spread = view.get("spread") or {}
            if spread and _number(spread.get("difference")) is not None:
                interval = (
                    f" [{_signed(spread['low'], 2)}, {_signed(spread['high'], 2)}]"
                    if _number(spread.get("low")) is not None and _number(spread.get("high")) is not None
                    else ""
                )
                notes.append(
                    f"{m}: group {_group_name(spread.get('most'))} − group {_group_name(spread.get('least'))}"
                    f" = {_signed(spread['difference'], 2)}{interval}; {view.get('consensus', '')}"
                )
        blocks.append(
            {
                "name": name,
                "tested": f"{_int(c.get('n_evaluated'))} of {_int(c.get('n_principles'))} principles tested",
                "rows": rows,
                "group_notes": notes,
                "has_groups": bool(c.get("groups")),
            }
        )
    whose = []
    for m in models:
        figures = overall_by_model[m]
        if len(figures) < 2:
            continue
        ranked = sorted(figures, key=lambda f: -_number(f[1]["value"]))
        (top, top_fig), (low_name, low_fig) = ranked[0], ranked[-1]
        listed = ", ".join(f"{name}'s {_fmt(f['value'], 2)}" for name, f in ranked)
        apart = _apart(top_fig, low_fig)
        if apart:
            verdict = f"follows {top}'s principles better (intervals apart)"
        elif apart is None:
            verdict = f"{top}'s is higher; no intervals to tell whether that is more than noise"
        else:
            verdict = f"no clear lead: the {top} and {low_name} intervals overlap"
        whose.append(f"{m}: {listed}, {verdict}")
    judge = (results.get("agreement") or {}).get("judge") or {}
    spans = sorted(
        d
        for d, row in judge.items()
        if isinstance(row, dict)
        and _number(row.get("low")) is not None
        and _number(row.get("high")) is not None
        and row["low"] <= 0.5 <= row["high"]
    )
    if spans:
        chance = (
            "The judge's agreement with people includes chance (0.5) for "
            + " and ".join(spans)
            + ", so these adherence figures may be no better than chance; with a small judge such as the"
            " bundled 135M model they show that the plumbing works, not how well a model follows its"
            " constitution."
        )
    elif not judge:
        chance = (
            "The judge's agreement with people was not measured, so it is not known whether these figures"
            " are better than chance."
        )
    else:
        chance = ""
    return {
        "skipped": skipped,
        "reference": reference,
        "models": models,
        "constitutions": blocks,
        "whose": whose,
        "chance": chance,
        "link": link,
    }


# -- the page --------------------------------------------------------------------------------------------
def _asked_stages(out: Path) -> list[str] | None:
    """The stages the study was asked to run (its config.yaml), when that file is there."""
    path = out / "config.yaml"
    if not path.is_file():
        return None
    config = _yaml(path)
    stages = config.get("stages") if isinstance(config, dict) else None
    return [str(s) for s in stages] if isinstance(stages, list) else None


def _judge_agreement(results: dict[str, Any]) -> list[str]:
    """'helpfulness: 0.62 [0.31, 0.86] of 8 held-out human pairs' per dimension, for the judge."""
    rows = []
    for dimension, row in sorted(((results.get("agreement") or {}).get("judge") or {}).items()):
        if isinstance(row, dict) and _number(row.get("agreement")) is not None:
            rows.append(
                f"{dimension}: {_fmt(row['agreement'], 2)} [{_fmt(row.get('low'), 2)}, "
                f"{_fmt(row.get('high'), 2)}] on {_int(row.get('n'))} held-out human pairs"
            )
    return rows


def study_context(out: Path | str) -> dict[str, Any]:
    """Everything the page shows, read from the study folder ``out``."""
    out = Path(out)
    constitution = _constitution(out)
    analysis = _analysis(
        out,
        constitution["selected_ids"] if constitution else None,
        constitution["threshold"] if constitution else None,
    )
    evaluation = _evaluation(out)
    training = _training(out, evaluation["labels"] if evaluation else None)
    found = {
        "analysis": analysis,
        "constitution": constitution,
        "training": training,
        "evaluation": evaluation,
    }
    asked = _asked_stages(out)
    status = []
    for stage in STAGES:
        section = found[stage]
        if section is not None and not (stage == "training" and not section["runs"]):
            state = "ran"
            if stage == "training" and not all(r["finished"] for r in section["runs"]):
                state = "incomplete"
            note = {"ran": "ran", "incomplete": "started, not finished"}[state]
        elif asked is not None and stage not in asked:
            state, note = "skipped", "did not run (not among this study's stages)"
        elif (out / stage).is_dir():
            state, note = "incomplete", "started, not finished (its results file is missing)"
        else:
            state, note = "missing", "did not run"
        status.append({"stage": stage, "state": state, "note": note})
    model = None
    if training and training["runs"]:
        model = training["runs"][0]["model"]
    elif evaluation and evaluation["labels"]:
        model = evaluation["specs"].get(evaluation["labels"][0])  # the reference every model is compared to
    return {
        "folder": out.name,
        "status": status,
        "analysis": analysis,
        "constitution": constitution,
        "training": training,
        "evaluation": evaluation,
        "model": model,
    }


def render_study_report(out: Path | str) -> str:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("study.html.jinja").render(**study_context(out))


def write_study_report(out: Path) -> Path:
    """Write ``out/index.html`` from the stage files in ``out`` (atomically) and return its path.

    Missing stages are shown as not run; a stage file that exists but cannot be read raises
    :class:`StudyReportError` naming it, and the previous page is left as it was."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: study folder not found (run `ccai study` first)")
    return atomic_write_text(out / "index.html", render_study_report(out))
