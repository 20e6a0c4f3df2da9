"""Intervals for the numbers in the report: every measure carries its uncertainty and its sample size.

On a CPU sample of a few dozen items an accuracy of 30 % means little without its interval; the report
shows both so nobody reads a difference into noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class Measure:
    """One number in Table 1: value, 95 % interval (``low``/``high``, None when undefined), sample size."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion; well behaved at 0 %, 100 % and small n."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def proportion(flags: Sequence[bool | int | float], scale: float = 100.0, note: str = "") -> Measure:
    """Share of true flags, scaled (percent by default), with its Wilson interval."""
    n = len(flags)
    if n == 0:
        return Measure(None, n=0, note=note or "no items")
    k = float(sum(flags))
    low, high = wilson(k, n)
    return Measure(scale * k / n, scale * low, scale * high, n, note)


def bootstrap(
    values: Sequence[Any],
    statistic: Callable[[list[Any]], float],
    *,
    seed: int,
    n_boot: int = 1000,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over resamples of ``values`` (seeded)."""
    values = list(values)
    if not values:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(values), size=len(values))
        result = statistic([values[i] for i in idx])
        if result is not None and not math.isnan(result):
            stats.append(result)
    if not stats:
        return (math.nan, math.nan)
    alpha = (1 - level) / 2
    return (float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha)))


def clean(value: Any) -> Any:
    """NaN and infinities become None, so results.json stays valid JSON."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


# -- paired comparisons with the reference model -----------------------------------------------------

Statistic = Callable[[list[dict[str, Any]]], "float | None"]

#: equivalence margins (the largest difference that counts as "no difference"), by the measure's unit;
#: ``EvalConfig.equivalence_margins`` overrides them per measure key
DEFAULT_MARGINS = {"percent": 5.0, "bias": 5.0, "unit": 0.02, "elo": 50.0}
#: fewest paired items for an equivalence claim: below it a bootstrap of a few items (e.g. both models at 0 %
#: on 4 questions) has no spread at all and would "prove" equivalence from nothing
MIN_EQUIVALENCE_N = 30


def default_margin(key: str) -> float:
    """The stated equivalence margin for a measure key (``mmlu.accuracy``, ``bbq.mean_abs_bias_ambig``)."""
    if "representativeness" in key or "refusal_mass" in key:
        return DEFAULT_MARGINS["unit"]
    if "bias" in key:
        return DEFAULT_MARGINS["bias"]
    if key.endswith("elo"):
        return DEFAULT_MARGINS["elo"]
    return DEFAULT_MARGINS["percent"]


def mean_of(
    field: str, scale: float = 100.0, where: Callable[[dict[str, Any]], bool] | None = None
) -> Statistic:
    """Statistic: ``scale`` x the mean of a boolean/number field over the records (optionally filtered)."""

    def statistic(records: list[dict[str, Any]]) -> float | None:
        values = [float(r[field]) for r in records if where is None or where(r)]
        return scale * sum(values) / len(values) if values else None

    return statistic


def verdict_of(
    low: float | None,
    high: float | None,
    low90: float | None,
    high90: float | None,
    margin: float,
    higher_is_better: bool | None,
    n: int = MIN_EQUIVALENCE_N,
) -> str:
    """Plain words for a difference: better / worse (95 % interval excludes 0), equivalent (TOST), unclear."""
    if low is None or high is None:
        return "undefined"
    if low > 0 or high < 0:
        if higher_is_better is None:
            return "higher" if low > 0 else "lower"
        return "better" if (low > 0) == higher_is_better else "worse"
    if n < MIN_EQUIVALENCE_N or low90 is None or high90 is None:
        return "inconclusive"
    if -margin < low90 and high90 < margin:
        return "equivalent"
    return "inconclusive"


def paired_difference(
    reference: list[dict[str, Any]],
    other: list[dict[str, Any]],
    statistic: Statistic,
    *,
    seed: int,
    n_boot: int = 1000,
    margin: float,
    higher_is_better: bool | None = None,
) -> dict[str, Any]:
    """``statistic(other) - statistic(reference)`` on the items both have, with a paired bootstrap.

    Items are matched by ``id`` and resampled together (the same draw for both models), so the interval
    reflects the difference between models on the same questions, not the spread of each score. Equivalence
    is tested with TOST at alpha = 0.05 in its interval form: equivalent when the 90 % interval of the
    difference lies inside ``(-margin, margin)``. ``verdict`` says better / worse (95 % interval excludes 0),
    equivalent, or inconclusive (neither: the sample cannot tell).
    """
    by_id = {r["id"]: r for r in other}
    ids = [r["id"] for r in reference if r["id"] in by_id]
    ref = {r["id"]: r for r in reference}
    a = [ref[i] for i in ids]
    b = [by_id[i] for i in ids]
    base, value = statistic(a), statistic(b)
    out: dict[str, Any] = {
        "n": len(ids),
        "margin": margin,
        "delta": None,
        "low": None,
        "high": None,
        "low90": None,
        "high90": None,
        "p_tost": None,
    }
    if base is None or value is None:
        out["verdict"] = "undefined"
        return out
    out["delta"] = value - base
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot if len(ids) > 1 else 0):
        idx = rng.integers(0, len(ids), size=len(ids))
        x, y = statistic([a[i] for i in idx]), statistic([b[i] for i in idx])
        if x is not None and y is not None and not (math.isnan(x) or math.isnan(y)):
            diffs.append(y - x)
    if diffs:
        d = np.array(diffs)
        out["low"], out["high"] = float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))
        out["low90"], out["high90"] = float(np.quantile(d, 0.05)), float(np.quantile(d, 0.95))
        # bootstrap TOST: the larger of the two one-sided p-values (H0: delta <= -margin, H0: delta >= margin)
        out["p_tost"] = float(max(np.mean(d <= -margin), np.mean(d >= margin)))
    out["verdict"] = verdict_of(
        out["low"], out["high"], out["low90"], out["high90"], margin, higher_is_better, len(ids)
    )
    return out
