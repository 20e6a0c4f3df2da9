"""Replay of a conversation's votes through successive updates, to apply Polis's two history rules.

Polis's math worker does not analyse a conversation once: it updates it every time new votes arrive, and two
of its rules depend on that history, so a single batch run over the final votes cannot follow them:

* **sticky in-conv set**: at each update, everyone with at least min(7, statements so far) votes joins the
  clustered set, and if it holds fewer than 15 the most active others are added; nobody ever leaves.
* **k smoother**: each update picks the k with the best silhouette, but the groups shown switch to a new k
  only after that same k has won a fixed number of consecutive updates (4 in Polis); the very first update
  takes its own best k.

:func:`replay_updates` sorts the votes by timestamp, cuts them into updates of ``tick_seconds`` (an update
holds every vote of one time window, as Polis's poller collects what arrived since the last poll) and runs
ccai's own PCA, base clusters and silhouettes on each update's votes so far. The warm starts of Polis's
k-means and power iteration are not replayed (each update is computed afresh, deterministically), nor are
moderation changes over time (the final moderation applies throughout): the replay reproduces the two rules,
not Polis's arithmetic bit for bit. Polis's actual update cadence depends on its load and is not in the
export, so ``tick_seconds`` is a choice, and the result is reported with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ccai.analysis.groups import (
    BASE_K,
    MAX_GROUPS,
    cluster_groups,
    polis_row_order,
    project_participants,
    sparse_pca,
)
from ccai.analysis.matrix import VoteMatrix

K_BUFFER = 4  # consecutive updates a new k must win before the groups switch to it (Polis's group-k-buffer)
FILL_TO = 15  # Polis's greedy fill of the clustered set
MAX_CLUSTERINGS = 400  # updates the backward k search may cluster before it calls k undecided


@dataclass
class ReplayResult:
    """What the replay decided, and how.

    ``in_conv``: mask over the matrix's participants (the sticky set after the last update); ``k``: the
    smoothed k after the last update (None: undecided within the clustering budget); ``since_update``: the
    update from which that k is shown; ``history``: one row per update (``time_ms`` of its last vote,
    ``participants``, ``in_conv``, and for the updates that were clustered ``best_k`` and ``silhouettes``).
    """

    in_conv: np.ndarray
    k: int | None
    history: pd.DataFrame
    tick_seconds: float
    k_buffer: int
    since_update: int | None = None
    clusterings: int = 0

    def summary(self) -> dict:
        """Updates, the k shown and since when, the last update's own best k, for summary.json and the
        report."""
        hist = self.history
        best = hist["best_k"].dropna()
        since = None
        if self.since_update is not None:
            since = pd.Timestamp(float(hist["time_ms"].iloc[self.since_update]), unit="ms").isoformat()
        return {
            "tick_seconds": self.tick_seconds,
            "k_buffer": self.k_buffer,
            "updates": int(len(hist)),
            "updates_clustered": int(self.clusterings),
            "k": self.k,
            "k_decided": self.k is not None,
            "k_shown_since": since,
            "last_update_best_k": int(best.iloc[-1]) if len(best) else None,
            "in_conv": int(self.in_conv.sum()),
        }


def update_ends(times_ms: np.ndarray, tick_seconds: float) -> np.ndarray:
    """Index one past the last vote of each update, for votes sorted by time.

    An update holds the votes of one window of ``tick_seconds`` counted from the first vote of the
    conversation; empty windows make no update.
    """
    if len(times_ms) == 0:
        return np.zeros(0, np.int64)
    if tick_seconds <= 0:
        raise ValueError(f"tick_seconds: expected a positive number, got {tick_seconds!r}")
    window = np.floor((times_ms - times_ms[0]) / (tick_seconds * 1000.0)).astype(np.int64)
    change = np.flatnonzero(np.diff(window)) + 1
    return np.append(change, len(times_ms)).astype(np.int64)


def grow_in_conv(
    in_conv: np.ndarray, counts: np.ndarray, n_statements: int, min_votes: int, fill_to: int = FILL_TO
) -> np.ndarray:
    """One update of the sticky clustered set: keep everyone in, add who now has enough votes, then fill
    to ``fill_to`` with the most active others (ties: the lower participant id)."""
    grown = in_conv | (counts >= min(min_votes, n_statements))
    short = fill_to - int(grown.sum())
    if short > 0:
        candidates = np.flatnonzero(~grown & (counts > 0))
        ranked = candidates[np.argsort(-counts[candidates], kind="stable")]
        grown[ranked[:short]] = True
    return grown


SmootherState = tuple[int | None, int, int | None]


def smooth_k(state: SmootherState, best: int, buffer: int) -> SmootherState:
    """One step of the k smoother. ``state`` = (last best k, how many updates in a row it won, shown k)."""
    last, count, shown = state
    count = count + 1 if last == best else 1
    if count >= buffer or shown is None:
        shown = best
    return best, count, shown


def last_shown_k(
    best_of: Callable[[int], int | None], n_updates: int, buffer: int, max_calls: int
) -> tuple[int | None, int | None, dict[int, int | None]]:
    """The k the smoother (:func:`smooth_k`) shows after update ``n_updates - 1``, found from the end.

    ``best_of(u)`` is update u's best k (None: not clusterable yet, which only happens before the first
    clusterable update). Returns (k, the update from which it is shown, every best k computed); k is None
    when ``max_calls`` updates were clustered without deciding.
    """
    best_at: dict[int, int | None] = {}
    run_value, run_length, earliest = None, 0, None
    for u in range(n_updates - 1, -1, -1):
        if len(best_at) >= max_calls:
            return None, None, best_at
        best = best_at[u] = best_of(u)
        if best is None:  # the smoother starts at the next update
            break
        earliest = u
        run_length = run_length + 1 if best == run_value else 1
        run_value = best
        if run_length >= buffer:
            return best, u + buffer - 1, best_at
    if earliest is None:
        return None, None, best_at
    return best_at[earliest], earliest, best_at  # no run ever: the first update's own k stays


def replay_updates(
    votes: pd.DataFrame,
    matrix: VoteMatrix,
    zeroed: np.ndarray,
    *,
    tick_seconds: float = 60.0,
    min_votes: int = 7,
    k_buffer: int = K_BUFFER,
    base_k: int = BASE_K,
    max_groups: int = MAX_GROUPS,
    seed: int = 0,
    max_clusterings: int = MAX_CLUSTERINGS,
) -> ReplayResult:
    """Replay ``votes`` (with a ``timestamp`` column, ms) in time order over the participants and statements
    of ``matrix`` (the analysis's filtered matrix; ``zeroed`` its moderated-out columns).

    Votes of participants or statements not in ``matrix`` are ignored (they were filtered out). A re-vote
    replaces the earlier vote from its own update on, as in Polis.

    The clustered set is replayed forwards over every update (cheap: vote counts only). The k shown after
    the last update needs clustering, which costs 0.05-2 s per update, so it is found backwards, with the
    same result as running the smoother forwards: the smoother shows the best k of the latest update that
    ended a run of ``k_buffer`` updates with the same best k (or, if no such run ever happened, the first
    update's best k). Scanning back from the last update, the first run found decides; a stable
    conversation needs ``k_buffer`` clusterings. After ``max_clusterings`` without a run, k is undecided
    (``k`` None; the caller keeps the batch choice and says so).
    """
    if "timestamp" not in votes.columns or votes["timestamp"].isna().any():
        missing = (
            "no 'timestamp' column"
            if "timestamp" not in votes.columns
            else (f"{int(votes['timestamp'].isna().sum())} vote(s) without a timestamp")
        )
        raise ValueError(
            f"history='replay' needs every vote's timestamp (a Polis votes.csv has them): {missing}; "
            "use history='batch' for an export without them"
        )
    n, m = matrix.shape
    rows = pd.Index(matrix.participants).get_indexer(votes["participant"].to_numpy())
    cols = pd.Index(matrix.statements).get_indexer(votes["statement"].to_numpy())
    keep = (rows >= 0) & (cols >= 0)
    times = votes["timestamp"].to_numpy(dtype=np.float64)[keep]
    order = np.argsort(times, kind="stable")
    times = times[order]
    rows, cols = rows[keep][order].astype(np.int64), cols[keep][order].astype(np.int64)
    values = votes["vote"].to_numpy()[keep][order].astype(np.int8)
    key = rows * m + cols
    # a pair counts towards in-conv from its first vote; re-votes add nothing
    _, first = np.unique(key, return_index=True)
    is_first = np.zeros(len(key), bool)
    is_first[first] = True

    # forwards: the sticky clustered set after each update (as the update at which each participant joined)
    ends = update_ends(times, tick_seconds)
    never = len(ends)
    joined = np.full(n, never, np.int64)
    in_conv = np.zeros(n, bool)
    counts = np.zeros(n, np.int64)
    col_seen = np.zeros(m, bool)
    sizes = np.zeros((len(ends), 2), np.int64)
    start = 0
    for u, end in enumerate(ends):
        new = slice(start, end)
        np.add.at(counts, rows[new][is_first[new]], 1)
        col_seen[cols[new]] = True
        start = end
        grown = grow_in_conv(in_conv, counts, int(col_seen.sum()), min_votes)
        joined[grown & ~in_conv] = u
        in_conv = grown
        sizes[u] = ((counts > 0).sum(), in_conv.sum())

    # backwards: the smoother's k after the last update
    silhouettes_at: dict[int, dict[int, float]] = {}

    def best_of(u: int) -> int | None:
        end = ends[u]
        best, silhouettes_at[u] = _best_k(
            key[:end],
            rows[:end],
            cols[:end],
            values[:end],
            matrix,
            zeroed,
            joined <= u,
            base_k=base_k,
            max_groups=max_groups,
            seed=seed,
        )
        return best

    shown, since, best_at = last_shown_k(best_of, len(ends), k_buffer, max_clusterings)
    history = pd.DataFrame(
        {
            "time_ms": times[ends - 1],
            "participants": sizes[:, 0],
            "in_conv": sizes[:, 1],
            "best_k": pd.array([best_at.get(u) for u in range(len(ends))], dtype="Int64"),
            "silhouettes": [silhouettes_at.get(u) for u in range(len(ends))],
        }
    )
    return ReplayResult(
        in_conv=in_conv,
        k=shown,
        history=history,
        tick_seconds=tick_seconds,
        k_buffer=k_buffer,
        since_update=since,
        clusterings=len(best_at),
    )


def _best_k(key, rows, cols, values, matrix, zeroed, in_conv, *, base_k, max_groups, seed):
    """The silhouette-best k on the votes so far (latest vote per pair), or (None, {}) when fewer than two
    distinct clustered positions exist yet."""
    n, m = matrix.shape
    _, last_rev = np.unique(key[::-1], return_index=True)
    latest = len(key) - 1 - last_rev
    present_rows = np.zeros(n, bool)
    present_rows[rows[latest]] = True
    present_cols = np.zeros(m, bool)
    present_cols[cols[latest]] = True
    so_far = VoteMatrix(
        participants=matrix.participants,
        statements=matrix.statements,
        rows=rows[latest].astype(np.int32),
        cols=cols[latest].astype(np.int32),
        values=values[latest],
    ).keep(rows=present_rows, cols=present_cols)
    sub_zeroed = zeroed[present_cols]
    sub_in = in_conv[present_rows]
    if sub_in.sum() < 2 or so_far.shape[1] < 2:
        return None, {}
    pca = sparse_pca(so_far, sub_zeroed, seed=seed)
    xy = project_participants(so_far, sub_zeroed, pca)
    order = polis_row_order(so_far)
    order = order[sub_in[order]]
    points = xy[order]
    if len(np.unique(points, axis=0)) < 2:
        return None, {}
    clustering = cluster_groups(points, base_k=base_k, max_k=max_groups)
    sil = clustering.silhouettes
    best = max(sil, key=lambda kk: (sil[kk], -kk))
    return int(best), {int(k): float(v) for k, v in sil.items()}
