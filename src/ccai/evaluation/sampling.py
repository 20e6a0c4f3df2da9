"""Seeded, stratified subsets of a benchmark, so a CPU run covers every subject or category a little.

A ``--limit`` run that takes the first N items of MMLU would test two subjects; a uniform random draw can
miss small categories. Proportional allocation with at least one item per stratum keeps the sample honest
about what it covered, and the chosen ids are written to the run log.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def allocate(sizes: dict[str, int], limit: int) -> dict[str, int]:
    """How many items each stratum gets: proportional to its size, at least one each when ``limit`` allows.

    Largest-remainder rounding; ties go to the stratum whose name sorts first, so the result is deterministic.
    """
    total = sum(sizes.values())
    if limit >= total:
        return dict(sizes)
    names = sorted(sizes)
    quota = {k: limit * sizes[k] / total for k in names}
    alloc = {k: min(sizes[k], int(np.floor(quota[k]))) for k in names}
    if limit >= len([k for k in names if sizes[k] > 0]):
        for k in names:
            if sizes[k] > 0 and alloc[k] == 0:
                alloc[k] = 1
    while sum(alloc.values()) > limit:  # the minimum of one pushed us over: take from the most over-served
        k = max((k for k in names if alloc[k] > 1), key=lambda k: (alloc[k] - quota[k], k))
        alloc[k] -= 1
    while sum(alloc.values()) < limit:
        k = max(
            (k for k in names if alloc[k] < sizes[k]), key=lambda k: (quota[k] - alloc[k], -names.index(k))
        )
        alloc[k] += 1
    return alloc


def _stratum_seed(seed: int, name: str) -> list[int]:
    digest = hashlib.sha256(name.encode()).digest()
    return [int(seed), int.from_bytes(digest[:4], "little")]


def stratified_sample(items: Sequence[T], key: Callable[[T], str], limit: int | None, seed: int) -> list[T]:
    """A seeded stratified subset of ``items`` (all of them when ``limit`` is None), in the original order.

    Each stratum draws with its own generator derived from (seed, stratum name), so adding a stratum does not
    change what the others pick.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit: expected a positive number of items, got {limit}")
    if limit is None or limit >= len(items):
        return list(items)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[str(key(item))].append(index)
    alloc = allocate({k: len(v) for k, v in groups.items()}, limit)
    chosen: list[int] = []
    for name in sorted(groups):
        members = groups[name]
        if alloc[name] == 0:
            continue
        rng = np.random.default_rng(_stratum_seed(seed, name))
        picks = rng.choice(len(members), size=alloc[name], replace=False)
        chosen.extend(members[int(p)] for p in picks)
    return [items[i] for i in sorted(chosen)]
