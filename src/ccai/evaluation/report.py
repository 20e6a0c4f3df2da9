"""report.html from results.json: the paper's Table 1, Figure 4 (BBQ bars), Figure 5 (OpinionQA heat map),
the Elo table and the side-by-side answers, in one offline file (figures embedded as PNG)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).with_name("templates")
SIDE_BY_SIDE_ROWS = 40
#: fewest prompts behind a win rate before the report colours it better / worse
MIN_COLOURED = 5


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows = measures, columns = models, each cell a value and its interval."""
    labels = [m["label"] for m in results["models"]]
    rows = []
    for row in results.get("rows", []):
        values = results["measures"].get(row["key"], {})
        if not values:
            continue
        digits = 3 if "representativeness" in row["key"] or "refusal_mass" in row["key"] else 1
        cells, n = [], ""
        for label in labels:
            m = values.get(label)
            if m is None:
                cells.append({"value": "–", "interval": ""})
                continue
            interval = (
                f"[{_fmt(m['low'], digits)}, {_fmt(m['high'], digits)}]"
                if m.get("low") is not None and m.get("high") is not None
                else ""
            )
            cells.append(
                {
                    "value": _fmt(m["value"], digits),
                    "interval": interval,
                    **_delta(results, row["key"], label, digits),
                }
            )
            n = m.get("n", n)
        rows.append(
            {
                "label": row["label"],
                "arrow": {True: "higher is better", False: "lower is better"}.get(
                    row["higher_is_better"], ""
                ),
                "cells": cells,
                "n": n,
            }
        )
    for dimension in ("helpfulness", "harmlessness"):
        table = results["details"].get(dimension)
        if not table:
            continue
        cells = []
        for label in labels:
            r = table["ratings"].get(label, {})
            pm = f" ± {r['plus_minus']:.1f}" if r.get("plus_minus") is not None and label != labels[0] else ""
            cells.append(
                {
                    "value": f"{r.get('elo', 0):.1f}{pm}" + (" (reference)" if label == labels[0] else ""),
                    "interval": "",
                    **_delta(results, f"{dimension}.elo", label, 1),
                }
            )
        rows.append(
            {
                "label": f"{dimension.capitalize()} Elo",
                "arrow": "higher is better",
                "cells": cells,
                "n": table["n_prompts"],
            }
        )
    return rows


VERDICT_WORDS = {
    "better": "better",
    "worse": "worse",
    "higher": "higher",
    "lower": "lower",
    "equivalent": "no difference (equivalent within ±{margin:g}, TOST)",
    "inconclusive": "inconclusive (neither a difference nor equivalence within ±{margin:g})",
    "undefined": "undefined",
}


def _delta(results: dict[str, Any], key: str, label: str, digits: int) -> dict[str, str]:
    """The paired difference of ``label`` to the reference model, as text for a Table 1 cell."""
    d = (results.get("paired") or {}).get(key, {}).get(label)
    if not d or d.get("delta") is None:
        return {}
    interval = f" [{_fmt(d['low'], digits)}, {_fmt(d['high'], digits)}]" if d.get("low") is not None else ""
    sign = "+" if d["delta"] >= 0 else "−"
    return {
        "delta": f"Δ {sign}{_fmt(abs(d['delta']), digits)}{interval}",
        "verdict": d["verdict"],
        "verdict_text": VERDICT_WORDS.get(d["verdict"], d["verdict"]).format(margin=d.get("margin", 0)),
    }


def _listed(results: dict[str, Any], details: dict[str, Any]) -> list[str]:
    """The models with ``details``, in ``results["models"]``'s order (the reference first), as every table
    and the study index show them; a label the model list lacks goes last."""
    order = [m["label"] for m in results.get("models") or []]
    return sorted(details, key=lambda label: order.index(label) if label in order else len(order))


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (imported late: only reports draw figures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bbq_figure(results: dict[str, Any]) -> str | None:
    details = results["details"].get("bbq")
    if not details:
        return None
    plt = _pyplot()

    labels = _listed(results, details)
    first = details[labels[0]]
    categories = [c for c in first["official"] + first["regenerated"] if c in first["per_category"]]
    names = [c + ("*" if c in first["regenerated"] else "") for c in categories]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    width = 0.8 / max(1, len(labels))
    x = np.arange(len(categories))
    for ax, condition in zip(axes, ("ambig", "disambig"), strict=True):
        for k, label in enumerate(labels):
            per = details[label]["per_category"]
            values = [per.get(c, {}).get(f"bias_{condition}") for c in categories]
            heights = [v if v is not None else 0 for v in values]
            cis = [per.get(c, {}).get(f"bias_{condition}_ci") or [None, None] for c in categories]
            err = np.array(
                [
                    [h - (ci[0] if ci[0] is not None else h) for h, ci in zip(heights, cis, strict=True)],
                    [(ci[1] if ci[1] is not None else h) - h for h, ci in zip(heights, cis, strict=True)],
                ]
            )
            ax.bar(
                x + k * width - 0.4 + width / 2,
                heights,
                width,
                yerr=np.clip(err, 0, None),
                capsize=2,
                label=label,
            )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, names, rotation=40, ha="right")
        ax.set_title(f"{'ambiguous' if condition == 'ambig' else 'disambiguated'} contexts")
    axes[0].set_ylabel("bias score (x100)")
    axes[1].legend(fontsize=8)
    return _png(fig)


def opinion_figure(results: dict[str, Any]) -> str | None:
    details = results["details"].get("opinionqa")
    if not details:
        return None
    plt = _pyplot()

    labels = _listed(results, details)
    groups = sorted(details[labels[0]]["per_group"], key=lambda g: (g != "Overall", g))
    columns = labels + ["human (group vs Overall)"]
    baseline = details[labels[0]].get("human_baseline", {})
    grid = np.array(
        [
            [details[lab]["per_group"].get(g, np.nan) for lab in labels] + [baseline.get(g, np.nan)]
            for g in groups
        ],
        dtype=float,
    )
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(columns), 0.28 * len(groups) + 1.5))
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(columns)), columns, rotation=20, ha="right")
    # "$30,000-$50,000" would otherwise be typeset as mathematics by matplotlib
    ax.set_yticks(range(len(groups)), [g.replace("$", r"\$") for g in groups], fontsize=8)
    for i in range(len(groups)):
        for j in range(len(columns)):
            if not np.isnan(grid[i, j]):
                red, green, blue, _ = image.cmap(image.norm(grid[i, j]))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue > 0.55  # black text on light cells
                colour = "black" if dark else "white"
                ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, label="representativeness (1 - W1/(N-1))")
    return _png(fig)


def side_by_side(results: dict[str, Any], limit: int = SIDE_BY_SIDE_ROWS) -> tuple[list[dict[str, Any]], int]:
    table = results.get("side_by_side") or {}
    labels = [m["label"] for m in results["models"]]
    ids = list(dict.fromkeys(i for lab in labels for i in table.get(lab, {})))
    rows = []
    by_source: dict[str, list[str]] = {}
    for i in ids:  # round-robin over sources so every kind of prompt shows
        first = next(table[lab][i] for lab in labels if i in table.get(lab, {}))
        by_source.setdefault(first["source"], []).append(i)
    ordered = [i for group in zip(*by_source.values(), strict=False) for i in group]
    ordered += [i for i in ids if i not in ordered]
    for i in ordered[:limit]:
        first = next(table[lab][i] for lab in labels if i in table.get(lab, {}))
        rows.append(
            {
                "prompt": first["prompt"],
                "source": first["source"],
                "cells": [table.get(lab, {}).get(i) for lab in labels],
            }
        )
    return rows, len(ids)


def mmlu_categories(results: dict[str, Any]) -> list[dict[str, Any]]:
    details = results["details"].get("mmlu")
    if not details:
        return []
    labels = [m["label"] for m in results["models"] if m["label"] in details]
    names = sorted({c for lab in labels for c in details[lab]["per_category"]})
    rows = []
    for name in names:
        cells = []
        for lab in labels:
            m = details[lab]["per_category"].get(name, {})
            cells.append(f"{_fmt(m.get('value'))} (n={m.get('n', 0)})")
        rows.append({"name": name, "cells": cells})
    return rows


def bbq_table(results: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Per-category signed bias (ambiguous, disambiguated) with 95 % intervals, for every model."""
    details = results["details"].get("bbq")
    if not details:
        return [], []
    labels = [m["label"] for m in results["models"] if m["label"] in details]
    first = details[labels[0]]
    categories = [c for c in first["official"] + first["regenerated"] if c in first["per_category"]]
    rows = []
    for category in categories:
        cells = []
        for label in labels:
            per = details[label]["per_category"].get(category, {})
            for condition in ("ambig", "disambig"):
                value = per.get(f"bias_{condition}")
                ci = per.get(f"bias_{condition}_ci") or [None, None]
                text = _fmt(value)
                if ci[0] is not None:
                    text += f" [{_fmt(ci[0])}, {_fmt(ci[1])}]"
                cells.append(text)
        rows.append({"name": category + ("*" if category in first["regenerated"] else ""), "cells": cells})
    return labels, rows


def agreement_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (who, dimension) of the human-agreement checks."""
    rows = []
    for who, by_dimension in (results.get("agreement") or {}).items():
        for dimension, found in by_dimension.items():
            low, high = found.get("low"), found.get("high")
            rows.append(
                {
                    "who": who,
                    "model": found.get("model", ""),
                    "dimension": dimension,
                    "agreement": _fmt(found.get("agreement"), 3),
                    "interval": f"[{_fmt(low, 3)}, {_fmt(high, 3)}]" if low is not None else "",
                    "ties": found.get("ties", ""),
                    "consistency": _fmt(found.get("consistency"), 3),
                    "n": found.get("n", ""),
                }
            )
    return rows


def _rate(figure: dict[str, Any] | None) -> dict[str, str]:
    """A win rate (or weighted adherence) with its interval, as two strings; dashes when missing."""
    if not figure:
        return {"value": "–", "interval": ""}
    value = figure.get("win_rate", figure.get("value"))
    low, high = figure.get("low"), figure.get("high")
    interval = f"[{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
    side = ""
    if figure.get("n", MIN_COLOURED) < MIN_COLOURED:
        pass  # a percentile bootstrap over two or three prompts says little; no colour for it
    elif low is not None and low > 0.5:
        side = "better"
    elif high is not None and high < 0.5:
        side = "worse"
    return {"value": _fmt(value, 2), "interval": interval, "side": side}


def _group(name: str) -> str:
    """Opinion groups 0, 1, ... are shown as A, B, ... (as the study report names them)."""
    return chr(ord("A") + int(name)) if name.isdigit() and int(name) < 26 else name


def adherence_view(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One block per constitution: overall, per opinion group, per framing, and the principle list."""
    found = (results.get("details") or {}).get("adherence")
    if not found:
        return []
    challengers = found["challengers"]
    blocks = []
    for c in found["constitutions"]:
        groups = c["groups"]
        by_group = [
            {
                "group": _group(g),
                "cells": [_rate(c["by_group"].get(m, {}).get("groups", {}).get(g)) for m in challengers],
            }
            for g in groups
        ]
        spreads = []
        for m in challengers:
            spread = c["by_group"].get(m, {}).get("spread") or {}
            if spread:
                low, high = spread.get("low"), spread.get("high")
                interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
                gap = f"{spread['difference']:+.2f}{interval}"
                spreads.append(
                    f"{m}: group {_group(spread['most'])} − group {_group(spread['least'])} = {gap}"
                )
        consensus = [f"{m}: {c['by_group'][m]['consensus']}" for m in challengers if m in c["by_group"]]
        framing = []
        for key, label in (
            ("polarity:positive", "positive wording (promotes)"),
            ("polarity:negative", "negative wording (avoids)"),
            ("form:behaviour", "behaviour (“do / do not …”)"),
            ("form:trait", "trait (“be …”)"),
        ):
            cells = c["by_framing"].get(key, {})
            if cells:
                framing.append(
                    {
                        "label": label,
                        "cells": [_rate(cells.get(m)) for m in challengers],
                        "n": max((v["n"] for v in cells.values()), default=0),
                        "principles": max((v["principles"] for v in cells.values()), default=0),
                    }
                )
        principles = []
        for row in c["principles"]:
            cells = []
            for m in challengers:
                cell = row["adherence"].get(m)
                rate = _rate(cell)
                if cell:
                    rate["counts"] = f"{cell['wins']}W {cell['ties']}T {cell['losses']}L"
                cells.append(rate)
            principles.append(
                {
                    "id": row["id"],
                    "comparison": row["comparison"],
                    "statements": row["statements"],
                    "support": ", ".join(f"{_group(g)}: {v:.0%}" for g, v in row["support"].items()) or "–",
                    "framing": " / ".join(
                        x for x in (row["framing"].get("polarity"), row["framing"].get("form")) if x
                    )
                    or "–",
                    "cells": cells,
                    "prompts": row["prompts"],
                }
            )
        writer = found.get("writer") or {}
        short = [w for w in writer.get("shortfalls", []) if w["constitution"] == c["name"]]
        blocks.append(
            {
                "sources": ", ".join(f"{k} {origin}" for origin, k in (c.get("sources") or {}).items()),
                "shortfalls": [f"{w['principle']}: {w['shortfall']}" for w in short],
                "name": c["name"],
                "title": c["title"],
                "version": c["version"],
                "hash": c["content_hash"][:16],
                "reviewed": c["reviewed"],
                "n_principles": c["n_principles"],
                "n_evaluated": c["n_evaluated"],
                "overall": [_rate(c["overall"].get(m)) for m in challengers],
                "groups": [_group(g) for g in groups],
                "by_group": by_group,
                "spreads": spreads,
                "consensus": consensus,
                "framing": framing,
                "principles": principles,
            }
        )
    return blocks


def render_report(results: dict[str, Any]) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "jinja"]))
    labels = [m["label"] for m in results["models"]]
    rows, total = side_by_side(results)
    bbq_labels, bbq_rows = bbq_table(results)
    bbq_note = ""
    opinion_note = ""
    if results["details"].get("bbq"):
        bbq_note = next(iter(results["details"]["bbq"].values())).get("note", "")
    if results["details"].get("opinionqa"):
        opinion_note = next(iter(results["details"]["opinionqa"].values())).get("supported", "")
    elo = [results["details"][d] for d in ("helpfulness", "harmlessness") if results["details"].get(d)]
    notes = [
        "MMLU prompts use the subject name with single spaces (the original code had two).",
        "A 135M-parameter model is near chance on MMLU and near zero on GSM8K; a 135M judge carries "
        "little signal: CPU runs check the plumbing, not alignment.",
    ]
    return env.get_template("report.html.jinja").render(
        models=results["models"],
        labels=labels,
        seed=results["seed"],
        limit=results.get("limit"),
        judge=results.get("judge"),
        judge_check=results.get("judge_check"),
        agreement=agreement_rows(results),
        scorer=next(
            (d.get("scorer_validation") for d in (results["details"].get("safety") or {}).values()), None
        ),
        bbq_labels=bbq_labels,
        bbq_table=bbq_rows,
        agreement_notes=results.get("agreement_notes", []),
        table=table_rows(results),
        reused=results.get("reused"),
        skipped=results.get("skipped"),
        bbq_figure=bbq_figure(results),
        bbq_note=bbq_note,
        opinion_figure=opinion_figure(results),
        opinion_note=opinion_note,
        elo=elo,
        side_by_side=rows,
        side_by_side_total=total,
        mmlu_categories=mmlu_categories(results),
        adherence=adherence_view(results),
        adherence_models=(results.get("details", {}).get("adherence") or {}).get("challengers", []),
        adherence_writer=results.get("adherence_writer"),
        samples=results.get("samples", {}),
        notes=notes,
    )


def write_report(results: dict[str, Any], path: Path | str) -> Path:
    """Render and write atomically."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_report(results), encoding="utf-8")
    tmp.replace(path)
    return path


def report_from_dir(run_dir: Path | str) -> Path:
    """Re-render ``run_dir``/report.html from its results.json (e.g. after editing the template)."""
    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results.json here; is this an evaluation run directory?")
    return write_report(json.loads(path.read_text()), run_dir / "report.html")
