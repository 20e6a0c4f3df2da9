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
from markupsafe import Markup, escape

from ccai.analysis import plots
from ccai.analysis.groups import NEAR_TIE, near_ties
from ccai.analysis.paper import CCAI_THRESHOLD
from ccai.analysis.result import AnalysisResult

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
        bytecode_cache=_bytecode_cache(),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    return env


def _bytecode_cache():
    """Jinja's compiled-template cache under the ccai cache dir: compiling the report template costs
    ~0.2 s, a fifth of a whole run, and is the same every time. None when the folder cannot be made."""
    import os

    from jinja2 import FileSystemBytecodeCache

    folder = Path(os.environ.get("CCAI_CACHE_DIR", Path.home() / ".cache" / "ccai")) / "jinja"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return FileSystemBytecodeCache(str(folder))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value)) or value is pd.NA


def _num(value: Any, digits: int = 3) -> str:
    if _missing(value) or (isinstance(value, str) and not value):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer) or (
        isinstance(value, float) and value.is_integer() and digits == 0
    ):
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def group_label(k: int) -> str:
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


class _Rows:
    """Statement rows for the template, from column arrays read once (a pandas row lookup per statement
    cost over a second on a 900-statement conversation)."""

    OPTIONAL = ("gac", "gac_polis", "gac_disagree", "pi", "p_selected", "brigade_margin")

    def __init__(self, result: AnalysisResult) -> None:
        stm = result.statements
        self.k = result.k
        self.position = {sid: i for i, sid in enumerate(stm.index)}
        self.ids = stm.index.to_numpy()
        self.text = stm["text"].to_numpy(object) if "text" in stm else np.full(len(stm), "", object)
        self.status = stm["status"].to_numpy(object) if "status" in stm else np.full(len(stm), "eligible")
        self.col = {c: stm[c].to_numpy(float) for c in ("n_seen", "n_agree", "n_disagree", "n_pass")}
        for c in self.OPTIONAL:
            self.col[c] = stm[c].to_numpy(float) if c in stm else np.full(len(stm), np.nan)
        for g in range(self.k):
            for c in ("agree", "disagree", "pass", "seen"):
                self.col[f"g{g}_{c}"] = stm[f"g{g}_{c}"].to_numpy(float)
        self.labels = [(group_label(g), _letter(g), plots.group_colour(g)) for g in range(self.k)]

    def row(self, sid: Any, **extra: Any) -> dict:
        i = self.position[sid]
        c = self.col

        def share(prefix: str, seen: float) -> tuple[float, float, float]:
            if not seen:
                return float("nan"), float("nan"), float("nan")
            return (
                c[prefix + "agree"][i] / seen,
                c[prefix + "disagree"][i] / seen,
                c[prefix + "pass"][i] / seen,
            )

        groups = []
        for g, (label, letter, colour) in enumerate(self.labels):
            gseen = c[f"g{g}_seen"][i]
            a, d, p = share(f"g{g}_", gseen)
            groups.append(
                {
                    "label": label,
                    "letter": letter,
                    "colour": colour,
                    "seen": int(gseen),
                    "agree": a,
                    "disagree": d,
                    "pass": p,
                }
            )
        seen = c["n_seen"][i]
        agree, disagree, passed = share("n_", seen)
        text = self.text[i]
        return {
            "id": self.ids[i].item() if hasattr(self.ids[i], "item") else self.ids[i],
            "text": "" if _missing(text) else str(text),
            "status": self.status[i],
            "seen": int(seen),
            "agree": agree,
            "disagree": disagree,
            "pass": passed,
            "gac": c["gac"][i],
            "gac_polis": c["gac_polis"][i],
            "gac_disagree": c["gac_disagree"][i],
            "pi": c["pi"][i],
            "p_selected": c["p_selected"][i],
            "margin": c["brigade_margin"][i],
            "groups": groups,
            **extra,
        }


def _statement_row(result: AnalysisResult, sid: Any, **extra: Any) -> dict:
    rows = getattr(result, "_report_rows", None)
    if rows is None:
        rows = _Rows(result)
        result._report_rows = rows  # a cache for one render; not part of the result's data
    return rows.row(sid, **extra)


def _pct(value: Any, digits: int = 0) -> str:
    return "–" if _missing(value) else f"{float(value):.{digits}%}"


def _all_statement_rows(rows: list[dict], certified: bool) -> Markup:
    """The rows of the report's full statement table as HTML, exactly as a template loop would write them.

    Why not in the template: a thousand rows of fifteen filtered cells through Jinja cost ~0.1 s, a tenth
    of a whole ``ccai analyze``; plain f-strings cost a fifth of that."""
    out = []
    for r in rows:
        counts = bool(r["seen"]) and r["status"] == "eligible"
        gac = (_num(r["gac"], 3), _num(r["gac_polis"], 3), _num(r["gac_disagree"], 3), _num(r["pi"], 2))
        gac = gac if counts else ("–", "–", "–", "–")
        certificate = (
            f'<td class="n">{_num(r["p_selected"], 2)}</td><td class="n">{_num(r["margin"], 0)}</td>'
            if certified
            else ""
        )
        out.append(
            f'    <tr class="{"" if r["status"] == "eligible" else "dim"}"><td class="id" '
            f'data-v="{escape(r["id"])}">{escape(r["id"])}</td><td class="text">{escape(r["text"])}</td>'
            f"<td>{escape(r['status'])}</td>\n"
            f'      <td class="n" data-v="{r["seen"]}">{_num(r["seen"], 0)}</td>\n'
            f'      <td class="n" data-v="{_num(r["agree"], 4)}">{_pct(r["agree"])}</td>'
            f'<td class="n" data-v="{_num(r["disagree"], 4)}">{_pct(r["disagree"])}</td>'
            f'<td class="n" data-v="{_num(r["pass"], 4)}">{_pct(r["pass"])}</td>\n'
            f'      <td class="n">{gac[0]}</td><td class="n">{gac[1]}</td><td class="n">{gac[2]}</td>'
            f'<td class="n">{gac[3]}</td>\n'
            f"{certificate}</tr>\n"
        )
    return Markup("".join(out))


def _letter(k: int) -> str:
    return chr(ord("A") + k) if k < 26 else str(k)


def _repness_sections(result: AnalysisResult) -> list[dict]:
    sections = []
    rep = result.repness
    sizes = result.group_sizes()
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
        sections.append(
            {
                "k": k,
                "label": group_label(k),
                "name": name,
                "colour": plots.group_colour(k),
                "size": sizes.get(str(name), 0),
                "rows": rows,
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


def _broad_disagreement(result: AnalysisResult) -> list[dict]:
    """Statements a majority of every group disagrees with, ranked by the disagree GAC (not the divisive
    ones: a statement one group rejects and another embraces is not broad disagreement)."""
    stm = result.eligible_statements()
    if stm.empty:
        return []
    majority = np.ones(len(stm), bool)
    for k in range(result.k):
        seen = stm[f"g{k}_seen"].to_numpy(float)
        share = np.divide(stm[f"g{k}_disagree"].to_numpy(float), seen, out=np.zeros(len(stm)), where=seen > 0)
        majority &= share > 0.5
    chosen = stm[majority].sort_values("gac_disagree", ascending=False).head(TOP_GAC)
    return [_statement_row(result, sid, score=chosen.loc[sid, "gac_disagree"]) for sid in chosen.index]


def _topic_rows(result: AnalysisResult) -> list[dict] | None:
    if result.topics is None:
        return None
    rows = []
    for rec in result.topics.to_dict(orient="records"):
        best = rec["best_statement"]
        rows.append({**rec, "best": _statement_row(result, best) if best is not None else None})
    return rows


def _group_summary_rows(result: AnalysisResult) -> list[dict] | None:
    if result.group_summaries is None:
        return None
    return [
        {**rec, "colour": plots.group_colour(g)}
        for g, rec in enumerate(result.group_summaries.to_dict(orient="records"))
    ]


def _about(result: AnalysisResult) -> dict:
    about = result.about
    part = result.participation
    dates = None
    if part is not None and len(part):
        dates = (f"{part.index.min():%Y-%m-%d}", f"{part.index.max():%Y-%m-%d}")
    return {
        "topic": about.get("topic", "").strip(),
        "description": about.get("conversation-description", about.get("description", "")).strip(),
        "url": about.get("url", "").strip(),
        "dates": dates,
    }


def _context(result: AnalysisResult, threshold: float, paper: Mapping[str, float] | None) -> dict:
    result._report_rows = _Rows(result)
    summary = result.summary()
    stm = result.eligible_statements()
    counts = summary["counts"]
    gac = result.gac_summary("gac")
    above = stm[stm["gac"] > threshold].sort_values("gac", ascending=False)
    top = stm.sort_values("gac", ascending=False).head(TOP_GAC)
    consensus = {
        "agree": [_statement_row(result, sid, score=score) for sid, score in result.consensus["agree"]],
        "disagree": _broad_disagreement(result),
    }
    uncertainty = [_statement_row(result, sid, score=score) for sid, score in result.uncertainty]
    sizes = result.group_sizes()
    groups = [
        {
            "k": k,
            "label": group_label(k),
            "letter": _letter(k),
            "name": name,
            "colour": plots.group_colour(k),
            "size": sizes.get(str(name), 0),
        }
        for k, name in enumerate(result.group_names)
    ]
    silhouettes = [
        {"k": k, "score": v, "chosen": k == result.clustering.k}
        for k, v in sorted(result.clustering.silhouettes.items())
    ]
    about = _about(result)
    timeline = None
    if result.participation is not None and len(result.participation):
        part = result.participation
        timeline = plots.timeline(
            {name: part[name] for name in part.columns if part[name].iloc[-1] > 0},
            "Participation over time (cumulative)",
        )
    hist = stm
    certified = "p_selected" in result.statements.columns
    return {
        "title": about["topic"] or "Opinion analysis",
        "about": about,
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
        "timeline": timeline,
        "timeline_unit": "hour"
        if getattr(result.participation, "index", None) is not None
        and result.participation.index.name == "hour"
        else "day",
        "participant_map": plots.participant_map(result, group_label),
        "statement_map": plots.statement_map(result, group_label, highlight=list(top.index)),
        "gac_hist": plots.histogram(
            hist["gac"].to_numpy(float),
            "GAC, the CCAI paper's variant",
            "product over groups of agree / votes (passes count as votes)",
            plots.GROUP_COLOURS[0],
            line=threshold,
            line_label=f"t = {threshold:g}: {len(above)} above",
            split=threshold,
        ),
        "pi_hist": plots.histogram(
            hist["pi"].to_numpy(float),
            "Polarization index (PI)",
            "PI = 1 − |agree − disagree| / votes",
            plots.GROUP_COLOURS[1],
            line=float(np.nanmedian(hist["pi"])) if hist["pi"].notna().any() else None,
            line_label="median",
        ),
        "repness": _repness_sections(result),
        "consensus": consensus,
        "uncertainty": uncertainty,
        "top": [_statement_row(result, sid) for sid in top.index],
        "all_statement_rows": _all_statement_rows(
            [_statement_row(result, sid) for sid in result.statements.index], certified
        ),
        "certified": certified,
        "certificate": result.certificate,
        "topics": _topic_rows(result),
        "group_summaries": _group_summary_rows(result),
        "filters": [step.summary() for step in result.filters],
        "silhouettes": silhouettes,
        "near_tie": near_ties(result.clustering.silhouettes, result.clustering.k),
        "replay": result.replay,
        "near_gap": NEAR_TIE,
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
    result: AnalysisResult, *, threshold: float | None = None, paper: Mapping[str, float] | None = None
) -> str:
    """The report as an HTML string (see :func:`write_report`). ``threshold``: the selection threshold
    shown; by default the certificates' (when computed) or the CCAI paper's 0.723."""
    if threshold is None:
        threshold = (result.certificate or {}).get("threshold", CCAI_THRESHOLD)
    template = _environment().get_template("report.html")
    return template.render(**_context(result, threshold, paper))


def write_report(
    result: AnalysisResult, path: Path | str, *, threshold: float | None = None, paper: dict | None = None
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
    *, threshold: float | None = None, paper: Mapping[str, float] | None = None
) -> Callable[[AnalysisResult, Path], Path]:
    """A ``report(result, path)`` writer with these options, for :meth:`AnalysisResult.save`."""

    def write(result: AnalysisResult, path: Path) -> Path:
        return write_report(result, path, threshold=threshold, paper=dict(paper) if paper else None)

    return write
