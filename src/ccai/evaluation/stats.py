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
