"""The report's figures as inline SVG written directly (no plotting library).

Why hand-written SVG: matplotlib cost about a second of import and a second of drawing per report, 95 % of
a whole ``ccai analyze`` run on a mid-sized conversation; a few hundred SVG elements cost milliseconds. SVG
also makes the figures readable and interactive in one offline file: every statement dot carries its text
in a ``<title>`` (shown on hover and read by screen readers), every participant dot the class of its group
(``g0``, ``g1``...), which the report's small inline script hides or shows for its group filter.

Colours are the Okabe–Ito palette, distinguishable with the common colour-vision deficiencies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

import numpy as np
import pandas as pd

# Okabe & Ito (2008), "Color Universal Design": blue, orange, reddish purple, sky blue, vermillion, yellow
GROUP_COLOURS = ["#0072B2", "#E69F00", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
AGREE, DISAGREE, PASS = "#009E73", "#D55E00", "#BBBBBB"
MUTED = "#B9BEC7"
INK = "#2b2f36"
SOFT = "#5b626c"
MAX_POINTS = 5000  # participants drawn on the map; beyond that an evenly spaced sample, said in the caption
MAX_LABELS = 40  # statement dots labelled with their id (the rest show it on hover)


def group_colour(index: int) -> str:
    return GROUP_COLOURS[index % len(GROUP_COLOURS)]


def _f(value: float) -> str:
    return f"{value:.1f}"


def _limits(values: np.ndarray, pad: float = 0.06, cut: float = 1) -> tuple[float, float]:
    """Limits covering the cut..(100-cut)th percentiles, so a few extreme points do not squash the rest."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return -1.0, 1.0
    lo, hi = np.percentile(values, [cut, 100 - cut])
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    span = hi - lo
    return lo - pad * span, hi + pad * span


class _Canvas:
    """An SVG of fixed viewBox with a plot area and data -> pixel scales (clipped to the area)."""

    def __init__(self, width: int, height: int, label: str, margin=(12, 12, 30, 40)) -> None:
        self.width, self.height = width, height
        self.top, self.right, self.bottom, self.left = margin
        self.parts = [
            f'<svg class="fig" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
            f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui,sans-serif" font-size="11">'
        ]

    def scales(self, xlim, ylim) -> tuple[Callable, Callable]:
        x0, x1 = self.left, self.width - self.right
        y0, y1 = self.height - self.bottom, self.top

        def sx(v):
            return x0 + (np.clip(v, *xlim) - xlim[0]) / (xlim[1] - xlim[0]) * (x1 - x0)

        def sy(v):
            return y0 + (np.clip(v, *ylim) - ylim[0]) / (ylim[1] - ylim[0]) * (y1 - y0)

        sx.unclipped = lambda v: x0 + (v - xlim[0]) / (xlim[1] - xlim[0]) * (x1 - x0)
        sy.unclipped = lambda v: y0 + (v - ylim[0]) / (ylim[1] - ylim[0]) * (y1 - y0)
        return sx, sy

    def add(self, text: str) -> None:
        self.parts.append(text)

    def frame(self, xlabel: str, ylabel: str) -> None:
        x0, x1 = self.left, self.width - self.right
        y0, y1 = self.height - self.bottom, self.top
        self.add(
            f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#e4e6ea"/>'
        )
        self.add(
            f'<text x="{(x0 + x1) / 2}" y="{self.height - 6}" text-anchor="middle" fill="{SOFT}">'
            f"{escape(xlabel)}</text>"
        )
        self.add(
            f'<text transform="translate(12 {(y0 + y1) / 2}) rotate(-90)" text-anchor="middle" '
            f'fill="{SOFT}">{escape(ylabel)}</text>'
        )

    def done(self) -> str:
        return "".join(self.parts) + "</svg>"


def participant_map(result, group_label: Callable[[int], str]) -> str:
    """Participants in the 2-D opinion space, one dot each, coloured and classed by group."""
    part = result.participants
    placed = part[part["x"].notna()]
    note = ""
    if len(placed) > MAX_POINTS:
        step = int(np.ceil(len(placed) / MAX_POINTS))
        placed = placed.iloc[::step]
        note = f" (every {step}th of {len(part[part['x'].notna()]):,} shown)"
    canvas = _Canvas(560, 420, "Opinion map of participants, coloured by group" + note)
    x, y = placed["x"].to_numpy(float), placed["y"].to_numpy(float)
    sx, sy = canvas.scales(_limits(x), _limits(y))
    canvas.frame("PC 1", "PC 2")
    names = list(result.group_names)
    index = {name: k for k, name in enumerate(names)}
    inside = placed["in_analysis"].to_numpy(bool)
    groups = placed["group"].to_numpy(object)
    px, py = sx(x), sy(y)
    out = [f'<g fill="{MUTED}" class="out">']
    out += [
        f'<circle cx="{_f(a)}" cy="{_f(b)}" r="2"/>' for a, b, i in zip(px, py, inside, strict=True) if not i
    ]
    out.append("</g>")
    codes = np.array([index.get(g, -1) for g in groups], dtype=np.int64)
    for k in range(len(names)):
        members = inside & (codes == k)
        out.append(f'<g class="g{k}" fill="{group_colour(k)}" fill-opacity="0.75">')
        out.append(f"<title>{escape(group_label(k))}</title>")
        out += [
            f'<circle cx="{_f(a)}" cy="{_f(b)}" r="2.6"/>'
            for a, b in zip(px[members], py[members], strict=True)
        ]
        out.append("</g>")
    canvas.add("".join(out))
    return canvas.done()


def statement_map(result, group_label: Callable[[int], str], highlight: Sequence = ()) -> str:
    """Eligible statements where they load in the opinion space. Each dot's ``<title>`` is "#id: text"
    (hover); representative statements take their group's colour; the ``highlight`` ids (and the
    representative ones) are labelled with their id, up to :data:`MAX_LABELS`."""
    stm = result.eligible_statements()
    stm = stm[stm["x"].notna()]
    canvas = _Canvas(
        560, 420, "Statements in the opinion space; hover a dot for its text; open dots lie beyond the axes"
    )
    x, y = stm["x"].to_numpy(float), stm["y"].to_numpy(float)
    sx, sy = canvas.scales(_limits(x, pad=0.1, cut=2), _limits(y, pad=0.1, cut=2))
    canvas.frame("PC 1", "PC 2")
    rep = result.repness
    ids = stm.index.to_numpy()
    owner = np.full(len(stm), -1)
    for k, name in enumerate(result.group_names):
        mine = rep.loc[rep["group"] == name, "statement_id"].to_numpy() if len(rep) else []
        owner[np.isin(ids, mine)] = k
    colours = np.array([group_colour(k) if k >= 0 else MUTED for k in owner], dtype=object)
    labelled = [s for s in ids[owner >= 0]] + [s for s in highlight if s in set(ids.tolist())]
    labelled = set(list(dict.fromkeys(labelled))[:MAX_LABELS])
    texts = ["" if not isinstance(t, str) else t for t in stm["text"].to_numpy(object)]
    px, py = sx(x), sy(y)
    clipped = (px != sx.unclipped(x)) | (py != sy.unclipped(y))
    mid = (canvas.left + canvas.width - canvas.right) / 2
    placed: list[tuple[float, float, float]] = []
    out = []
    for i in np.argsort(owner >= 0, kind="stable"):  # grey first, coloured on top
        sid, k, colour = ids[i], owner[i], colours[i]
        r = 4.5 if k >= 0 else 3.2
        if clipped[i]:
            dot = (
                f'<circle cx="{_f(px[i])}" cy="{_f(py[i])}" r="{r}" fill="white" stroke="{colour}" '
                'stroke-width="1.5"/>'
            )
        else:
            dot = (
                f'<circle cx="{_f(px[i])}" cy="{_f(py[i])}" r="{r}" fill="{colour}" stroke="white" '
                'stroke-width="0.8"/>'
            )
        out.append(
            f'<g class="{f"s g{k}" if k >= 0 else "s"}"><title>#{sid}: {escape(texts[i])}</title>{dot}'
        )
        if sid in labelled and _free(placed, px[i], py[i], len(str(sid))):
            right = px[i] > mid
            out.append(
                f'<text x="{_f(px[i] + (-6 if right else 6))}" y="{_f(py[i] + (10 if py[i] < 30 else -4))}" '
                f'text-anchor="{"end" if right else "start"}" fill="{INK}" font-size="10">{sid}</text>'
            )
        out.append("</g>")
    canvas.add("".join(out))
    return canvas.done()


def _free(placed: list[tuple[float, float, float]], x: float, y: float, chars: int) -> bool:
    """Whether a label at (x, y) clears every label already placed (then it is placed): overlapping ids
    are left to the hover text rather than drawn as an unreadable smudge."""
    half = 3.2 * chars + 4
    for px, py, ph in placed:
        if abs(px - x) < half + ph and abs(py - y) < 11:
            return False
    placed.append((x, y, half))
    return True


def histogram(
    values: np.ndarray,
    title: str,
    xlabel: str,
    colour: str,
    line: float | None = None,
    line_label: str = "",
    split: float | None = None,
) -> str:
    """A 25-bin histogram over [0, 1]; bars above ``split`` in the full colour, below it lighter."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    bins = np.linspace(0, 1, 26)
    counts, _ = np.histogram(values, bins=bins)
    canvas = _Canvas(520, 260, title, margin=(26, 12, 34, 40))
    top = max(int(counts.max(initial=0)), 1)
    sx, sy = canvas.scales((0.0, 1.0), (0.0, top * 1.08))
    canvas.frame(xlabel, "statements")
    canvas.add(f'<text x="{canvas.left}" y="16" fill="{INK}" font-weight="600">{escape(title)}</text>')
    for i, n in enumerate(counts):
        x0, x1 = sx(bins[i]), sx(bins[i + 1])
        fill = colour if split is None or bins[i] >= split else colour + "66"
        canvas.add(
            f'<rect x="{_f(x0 + 0.5)}" y="{_f(sy(n))}" width="{_f(x1 - x0 - 1)}" '
            f'height="{_f(sy(0) - sy(n))}" '
            f'fill="{fill}"><title>{bins[i]:.2f}–{bins[i + 1]:.2f}: {n} statements</title></rect>'
        )
    for tick in (0, 0.25, 0.5, 0.75, 1):
        canvas.add(
            f'<text x="{_f(sx(tick))}" y="{canvas.height - 20}" text-anchor="middle" fill="{SOFT}" '
            f'font-size="10">{tick:g}</text>'
        )
    canvas.add(
        f'<text x="{canvas.left - 4}" y="{_f(sy(top))}" text-anchor="end" fill="{SOFT}" '
        f'font-size="10">{top}</text>'
    )
    if line is not None and np.isfinite(line):
        lx = sx(line)
        canvas.add(
            f'<line x1="{_f(lx)}" x2="{_f(lx)}" y1="{canvas.top}" y2="{sy(0)}" stroke="{INK}" '
            f'stroke-dasharray="4 3"/>'
        )
        canvas.add(
            f'<text x="{_f(lx + 4)}" y="{canvas.top + 12}" fill="{INK}" font-size="10">'
            f"{escape(line_label)}</text>"
        )
    return canvas.done()


def timeline(series: dict[str, pd.Series], title: str) -> str:
    """Cumulative counts over time (one line each, x = date), e.g. participants, votes, statements."""
    canvas = _Canvas(900, 220, title, margin=(26, 110, 34, 12))
    canvas.add(f'<text x="{canvas.left}" y="16" fill="{INK}" font-weight="600">{escape(title)}</text>')
    days = [s.index for s in series.values() if len(s)]
    if not days:
        return canvas.done()
    start = min(d.min() for d in days)
    end = max(d.max() for d in days)
    span = max((end - start).total_seconds(), 1.0)
    stamp = "%Y-%m-%d %H:%M" if span < 3 * 86_400 else "%Y-%m-%d"  # a short conversation is binned by hour
    x0, x1 = canvas.left, canvas.width - canvas.right
    y0, y1 = canvas.height - canvas.bottom, canvas.top
    canvas.add(f'<line x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}" stroke="#e4e6ea"/>')
    palette = [GROUP_COLOURS[0], GROUP_COLOURS[1], GROUP_COLOURS[2]]
    for n, (name, s) in enumerate(series.items()):
        if not len(s):
            continue
        total = float(s.iloc[-1]) or 1.0
        xs = x0 + (s.index - start).total_seconds().to_numpy() / span * (x1 - x0)
        ys = y0 + s.to_numpy(float) / total * (y1 - y0)
        points = " ".join(f"{_f(a)},{_f(b)}" for a, b in zip(xs, ys, strict=True))
        colour = palette[n % len(palette)]
        canvas.add(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{escape(name)}: {int(s.iloc[-1]):,} by {s.index[-1].strftime(stamp)}</title></polyline>"
        )
        canvas.add(
            f'<text x="{_f(xs[-1] + 4)}" y="{_f(ys[-1] + 4 + 12 * n)}" fill="{colour}" font-size="10">'
            f"{escape(name)} {int(s.iloc[-1]):,}</text>"
        )
    canvas.add(
        f'<text x="{x0}" y="{canvas.height - 16}" fill="{SOFT}" font-size="10">{start.strftime(stamp)}</text>'
    )
    canvas.add(
        f'<text x="{x1}" y="{canvas.height - 16}" text-anchor="end" fill="{SOFT}" font-size="10">'
        f"{end.strftime(stamp)}</text>"
    )
    canvas.add(
        f'<text x="{(x0 + x1) / 2}" y="{canvas.height - 4}" text-anchor="middle" fill="{SOFT}" '
        f'font-size="10">each line scaled to its own total</text>'
    )
    return canvas.done()
