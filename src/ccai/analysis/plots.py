"""The report's figures, drawn with matplotlib's object API (no pyplot state) and returned as PNG bytes.

Why PNG bytes: the report embeds them as base64 ``data:`` URIs, so the HTML is one self-contained file that
opens offline. Each function takes an :class:`~ccai.analysis.result.AnalysisResult` and draws one figure of
the CCAI paper's kind (opinion map, Figure 2's per-group bars, Figure 3's GAC and PI histograms).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

GROUP_COLOURS = ["#3b6fb6", "#e0883a", "#4a9e6b", "#c2474f", "#7d63b8", "#8c6d4f", "#d16fae", "#6f7f8f"]
AGREE, DISAGREE, PASS = "#3f9a5b", "#cf4a4a", "#c4c4c4"
MUTED = "#b9bec7"
INK = "#2b2f36"


def group_colour(index: int) -> str:
    return GROUP_COLOURS[index % len(GROUP_COLOURS)]


def _figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.spines["left"].set_color("#9aa0a8")
    ax.spines["bottom"].set_color("#9aa0a8")
    ax.tick_params(colors="#555b63", labelsize=8)
    ax.title.set_color(INK)


def to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI for an <img> that needs no file next to the report."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _robust_limits(values: np.ndarray, pad: float = 0.08, cut: float = 1) -> tuple[float, float]:
    """Axis limits covering the cut..(100-cut)th percentiles, so a few extreme points do not squash it."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return -1.0, 1.0
    lo, hi = np.percentile(values, [cut, 100 - cut])
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    span = hi - lo
    return lo - pad * span, hi + pad * span


def opinion_map(result, group_label) -> bytes:
    """Left: participants in the 2-D opinion space, coloured by group. Right: statement positions, coloured by
    the group they represent (Polis repness), the rest grey. Points beyond the 1..99th percentile are drawn on
    the border as open markers, so the scale stays readable."""
    fig = _figure(10.5, 4.6)
    left, right = fig.subplots(1, 2)
    part = result.participants
    names = list(result.group_names)
    outside = part[~part["in_analysis"] & part["x"].notna()]
    if len(outside):
        left.scatter(
            outside["x"],
            outside["y"],
            s=6,
            c=MUTED,
            alpha=0.6,
            linewidths=0,
            label=f"not in groups ({len(outside):,})",
        )
    inside = part[part["in_analysis"]]
    for k, name in enumerate(names):
        members = inside[inside["group"] == name]
        left.scatter(
            members["x"],
            members["y"],
            s=9,
            c=group_colour(k),
            alpha=0.75,
            linewidths=0,
            label=f"{group_label(k)} ({len(members):,})",
        )
    _clip_axes(left, part["x"].to_numpy(float), part["y"].to_numpy(float))
    left.set_title("Participants", fontsize=10, loc="left")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 6),
        fontsize=8,
        frameon=False,
        markerscale=2,
    )

    stm = result.statements
    colour = pd.Series(MUTED, index=stm.index, dtype=object)
    rep = result.repness
    for k, name in enumerate(names):
        ids = rep.loc[rep["group"] == name, "statement_id"]
        colour[colour.index.isin(ids)] = group_colour(k)
    eligible = stm["eligible"].to_numpy(bool) if "eligible" in stm else np.ones(len(stm), bool)
    x, y = stm["x"].to_numpy(float), stm["y"].to_numpy(float)
    xlim, ylim = _robust_limits(x[eligible], pad=0.12, cut=2), _robust_limits(y[eligible], pad=0.12, cut=2)
    cx, cy = np.clip(x, *xlim), np.clip(y, *ylim)
    clipped = (cx != x) | (cy != y)
    grey = colour.to_numpy() == MUTED
    for mask, size, z in ((grey, 10, 1), (~grey, 28, 2)):
        inner, outer = mask & eligible & ~clipped, mask & eligible & clipped
        right.scatter(
            cx[inner],
            cy[inner],
            s=size,
            c=list(colour.to_numpy()[inner]),
            marker="D",
            linewidths=0,
            alpha=0.85,
            zorder=z,
        )
        right.scatter(
            cx[outer],
            cy[outer],
            s=size,
            facecolors="none",
            edgecolors=list(colour.to_numpy()[outer]),
            marker="D",
            linewidths=1,
            zorder=z,
        )
    right.set_xlim(*xlim)
    right.set_ylim(*ylim)
    right.set_title("Statements (coloured: representative of a group)", fontsize=10, loc="left")
    for ax in (left, right):
        _style(ax)
        ax.axhline(0, color="#e3e5e8", lw=0.8, zorder=0)
        ax.axvline(0, color="#e3e5e8", lw=0.8, zorder=0)
        ax.set_xlabel("PC 1", fontsize=8, color="#555b63")
        ax.set_ylabel("PC 2", fontsize=8, color="#555b63")
    return to_png(fig)


def _clip_axes(ax, x: np.ndarray, y: np.ndarray) -> None:
    ax.set_xlim(*_robust_limits(x, pad=0.05))
    ax.set_ylim(*_robust_limits(y, pad=0.05))


def gac_pi_histograms(result, threshold: float) -> bytes:
    """The CCAI paper's Figure 3: GAC with the selection threshold, and the polarization index PI."""
    stm = result.eligible_statements()
    fig = _figure(10.5, 3.5)
    left, right = fig.subplots(1, 2)
    bins = np.linspace(0, 1, 26)
    gac = stm["gac"].dropna().to_numpy(float)
    above = int((gac > threshold).sum())
    left.hist(gac[gac <= threshold], bins=bins, color="#9fb6d6", edgecolor="white", linewidth=0.6)
    left.hist(gac[gac > threshold], bins=bins, color="#3b6fb6", edgecolor="white", linewidth=0.6)
    left.axvline(threshold, color=INK, lw=1.2, ls="--")
    left.text(
        threshold,
        left.get_ylim()[1] * 0.96,
        f"  t = {threshold:g}\n  {above} above",
        fontsize=8,
        va="top",
        color=INK,
    )
    left.set_title("Group-aware consensus (GAC)", fontsize=10, loc="left")
    left.set_xlabel("GAC: product over groups of agree / votes", fontsize=8, color="#555b63")
    pi = stm["pi"].dropna().to_numpy(float)
    right.hist(pi, bins=bins, color="#c9a36b", edgecolor="white", linewidth=0.6)
    if pi.size:
        median = float(np.median(pi))
        right.axvline(median, color=INK, lw=1.2, ls="--")
        right.text(
            median, right.get_ylim()[1] * 0.96, f"  median {median:.2f}", fontsize=8, va="top", color=INK
        )
    right.set_title("Polarization index (PI)", fontsize=10, loc="left")
    right.set_xlabel("PI = 1 − |agree − disagree| / votes", fontsize=8, color="#555b63")
    for ax in (left, right):
        _style(ax)
        ax.set_xlim(0, 1)
        ax.set_ylabel("statements", fontsize=8, color="#555b63")
    return to_png(fig)


def group_bars(result, statement_ids: Sequence, group_label, title: str) -> bytes:
    """The CCAI paper's Figure 2 for a list of statements: one 100 % bar per group, split agree / disagree /
    pass, so a reader sees at a glance where the groups part ways."""
    names = list(result.group_names)
    ids = list(statement_ids)
    n_groups = len(names)
    bar = 0.8 / max(n_groups, 1)
    height = 0.55 + len(ids) * (0.18 + 0.2 * n_groups)
    height = max(height, 1.6)
    fig = _figure(8.0, height, layout=None)
    fig.subplots_adjust(left=0.08, right=0.66, top=1 - 0.55 / height, bottom=0.3 / height)
    ax = fig.subplots()
    stm = result.statements
    labels, ticks = [], []
    for i, sid in enumerate(ids):
        row = stm.loc[sid]
        for k in range(n_groups):
            seen = float(row[f"g{k}_seen"])
            parts = [float(row[f"g{k}_{c}"]) / seen if seen else 0.0 for c in ("agree", "disagree", "pass")]
            y = i + (k - (n_groups - 1) / 2) * bar
            start = 0.0
            for share, colour in zip(parts, (AGREE, DISAGREE, PASS), strict=True):
                ax.barh(
                    y, share, left=start, height=bar * 0.9, color=colour, edgecolor="white", linewidth=0.4
                )
                start += share
            ax.text(
                1.02,
                y,
                f"{group_label(k)}: {parts[0]:.0%} agree, {parts[1]:.0%} disagree (n={int(seen)})",
                va="center",
                fontsize=7,
                color=group_colour(k),
                clip_on=False,
            )
        labels.append(f"#{sid}")
        ticks.append(i)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0", "25%", "50%", "75%", "100%"])
    ax.set_title(title, fontsize=10, loc="left")
    _style(ax)
    handles = [
        ax.barh(0, 0, color=c, label=t) for c, t in ((AGREE, "agree"), (DISAGREE, "disagree"), (PASS, "pass"))
    ]
    fig.legend(handles=handles, fontsize=7, frameon=False, ncols=3, loc="upper right")
    return to_png(fig)
