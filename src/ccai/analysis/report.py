"""``report.html``: one self-contained page a person reads to judge an opinion analysis.

It shows what the CCAI paper showed (the opinion map, Figure 2's per-group bars for each group's
representative statements, Figure 3's GAC and PI histograms), the lists a reader acts on (consensus,
uncertainty, the statements above the selection threshold), and what a sceptic checks (what each filter
removed, k and silhouettes, how the labelings agree, and, when given, the paper's figures next to the
recomputed ones). Figures are embedded PNGs and the CSS is inline, so the file opens offline.

Statement texts are participants' own words: the template autoescapes everything, nothing is marked safe
except the base64 image URIs this module makes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from ccai.analysis import plots
from ccai.analysis.result import PAPER_THRESHOLD, AnalysisResult

__all__ = ["render_report", "report_writer", "write_report"]

TOP_GAC = 12  # statements listed under "highest group-aware consensus"
CHANCE_ARI = 0.2  # below this, two labelings of the same people barely agree

FIGURE_NAMES = {
    "n_statements": "statements",
    "n_participants": "participants",
    "group_0_size": "size of group 0",
    "group_1_size": "size of group 1",
    "gac_mean": "GAC mean",
    "gac_median": "GAC median",
    "gac_min": "GAC min",
    "gac_max": "GAC max",
    "threshold": "selection threshold",
    "n_above_threshold": "statements above the threshold",
    "pi_median": "PI median",
    "pi_adjusted_median": "adjusted PI median",
    "matched_share_vs_polis": "share matching Polis's groups",
}


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("ccai.analysis", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v, digits=0: "–" if _missing(v) else f"{float(v):.{digits}%}"
    env.filters["num"] = _num
    return env


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value)) or value is pd.NA


def _num(value: Any, digits: int = 3) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer) or (
        isinstance(value, float) and value.is_integer() and digits == 0
    ):
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def _group_label(k: int) -> str:
    return f"Group {chr(ord('A') + k)}" if k < 26 else f"Group {k}"


def _decimals(value: float) -> int:
    text = f"{value}"
    return len(text.split(".")[1]) if "." in text and not float(value).is_integer() else 0


def _paper_rows(result: AnalysisResult, paper: Mapping[str, float], threshold: float) -> list[dict]:
    """Paper value, recomputed value and whether they agree to the paper's printed precision."""
    from ccai.analysis.paper import paper_figures

    mine = dict(paper_figures(result))
    mine["threshold"] = threshold
    mine["n_above_threshold"] = int((result.eligible_statements()["gac"] > threshold).sum())
    polis_rows = (
        result.agreement[
            (result.agreement["a"].isin(["given", "polis"]))
            & (result.agreement["b"].isin(["given", "polis"]))
        ]
        if len(result.agreement)
        else pd.DataFrame()
    )
    if len(polis_rows):
        mine["matched_share_vs_polis"] = float(polis_rows["matched_share"].iloc[0])
    rows = []
    for key, value in paper.items():
        ours = mine.get(key)
        if ours is None:
            continue
        places = 0 if float(value).is_integer() else max(_decimals(float(value)), 2)
        match = round(float(ours), places) == round(float(value), places)
        rows.append(
            {
                "figure": FIGURE_NAMES.get(key, key.replace("_", " ")),
                "paper": value,
                "ours": ours,
                "places": places,
                "match": match,
                "integer": float(value).is_integer(),
            }
        )
    return rows


def _statement_row(result: AnalysisResult, sid: Any, **extra: Any) -> dict:
    row = result.statements.loc[sid]
    seen = float(row["n_seen"]) or float("nan")
    groups = []
    for k in range(result.k):
        gseen = float(row[f"g{k}_seen"])
        groups.append(
            {
                "label": _group_label(k),
                "colour": plots.group_colour(k),
                "seen": int(gseen),
                "agree": row[f"g{k}_agree"] / gseen if gseen else float("nan"),
            }
        )
    text = row.get("text", "")
    return {
        "id": sid,
        "text": "" if _missing(text) else str(text),
        "seen": int(row["n_seen"]),
        "agree": row["n_agree"] / seen,
        "disagree": row["n_disagree"] / seen,
        "pass": row["n_pass"] / seen,
        "gac": row.get("gac"),
        "gac_polis": row.get("gac_polis"),
        "pi": row.get("pi"),
        "groups": groups,
        **extra,
    }


def _repness_sections(result: AnalysisResult) -> list[dict]:
    sections = []
    rep = result.repness
    for k, name in enumerate(result.group_names):
        mine = rep[rep["group"] == name] if len(rep) else rep
        ids = list(mine["statement_id"])
        # "in group": the raw share of the group voting this way, the number the bars show (Polis's
        # p_success adds pseudocounts and is kept in repness.csv).
        share = (mine["n_success"] / mine["n_trials"].where(mine["n_trials"] > 0)).tolist()
        rows = [
            _statement_row(result, sid, direction=d, share=p, repness=r)
            for sid, d, p, r in zip(ids, mine["direction"], share, mine["repness"], strict=True)
        ]
        figure = None
        if ids:
            figure = plots.data_uri(
                plots.group_bars(
                    result, ids, _group_label, f"{_group_label(k)}: representative statements, votes by group"
                )
            )
        sections.append(
            {
                "label": _group_label(k),
                "name": name,
                "colour": plots.group_colour(k),
                "size": result.group_sizes().get(str(name), 0),
                "rows": rows,
                "figure": figure,
            }
        )
    return sections


def _agreement_rows(result: AnalysisResult) -> list[dict]:
    rows = []
    for rec in result.agreement.to_dict(orient="records"):
        given = "given" in (rec["a"], rec["b"])
        warn = given and not _missing(rec["ari"]) and rec["ari"] < CHANCE_ARI
        rows.append({**rec, "warn": warn})
    return rows


def _context(result: AnalysisResult, threshold: float, paper: Mapping[str, float] | None) -> dict:
    summary = result.summary()
    stm = result.eligible_statements()
    counts = summary["counts"]
    gac = result.gac_summary("gac")
    above = stm[stm["gac"] > threshold].sort_values("gac", ascending=False)
    top = stm.sort_values("gac", ascending=False).head(TOP_GAC)
    consensus = {
        side: [_statement_row(result, sid, score=score) for sid, score in pairs]
        for side, pairs in result.consensus.items()
    }
    uncertainty = [_statement_row(result, sid, score=score) for sid, score in result.uncertainty]
    groups = [
        {
            "label": _group_label(k),
            "name": name,
            "colour": plots.group_colour(k),
            "size": result.group_sizes().get(str(name), 0),
        }
        for k, name in enumerate(result.group_names)
    ]
    silhouettes = [
        {"k": k, "score": v, "chosen": k == result.clustering.k}
        for k, v in sorted(result.clustering.silhouettes.items())
    ]
    return {
        "title": "Opinion analysis",
        "warnings": list(result.warnings),
        "summary": summary,
        "counts": counts,
        "k": result.k,
        "group_source": result.group_source,
        "groups": groups,
        "gac": gac,
        "threshold": threshold,
        "n_above": len(above),
        "pi_median": summary["pi_median"],
        "paper": _paper_rows(result, paper, threshold) if paper else None,
        "map": plots.data_uri(plots.opinion_map(result, _group_label)),
        "histograms": plots.data_uri(plots.gac_pi_histograms(result, threshold)),
        "repness": _repness_sections(result),
        "consensus": consensus,
        "uncertainty": uncertainty,
        "top": [_statement_row(result, sid) for sid in top.index],
        "filters": [step.summary() for step in result.filters],
        "silhouettes": silhouettes,
        "ccai_k": result.clustering.k,
        "explained": [float(v) for v in result.pca.explained_variance_ratio],
        "agreement": _agreement_rows(result),
        "chance_ari": CHANCE_ARI,
        "params": summary["params"],
        "seed": result.seed,
        "input_hash": result.input_hash,
        "version": result.version,
    }


def render_report(
    result: AnalysisResult, *, threshold: float = PAPER_THRESHOLD, paper: Mapping[str, float] | None = None
) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    template = _environment().get_template("report.html")
    return template.render(**_context(result, threshold, paper))


def write_report(
    result: AnalysisResult, path: Path | str, *, threshold: float = PAPER_THRESHOLD, paper: dict | None = None
) -> Path:
    """Write ``report.html`` for ``result`` to ``path``; ``paper`` (e.g. ``CCAI_PAPER``) adds a
    "paper vs recomputed" table. The file is written under a temporary name and renamed."""
    path = Path(path)
    html = render_report(result, threshold=threshold, paper=paper)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path


def report_writer(
    *, threshold: float = PAPER_THRESHOLD, paper: Mapping[str, float] | None = None
) -> Callable[[AnalysisResult, Path], Path]:
    """A ``report(result, path)`` writer with these options, for :meth:`AnalysisResult.save`."""

    def write(result: AnalysisResult, path: Path) -> Path:
        return write_report(result, path, threshold=threshold, paper=dict(paper) if paper else None)

    return write
