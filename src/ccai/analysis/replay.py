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


@dataclass
class ReplayResult:
    """What the replay decided, and how.

    ``in_conv``: mask over the matrix's participants (the sticky set after the last update); ``k``: the
    smoothed k after the last update; ``history``: one row per update (``time_ms`` of its last vote,
    ``participants``, ``in_conv``, ``best_k`` by silhouette, ``k`` smoothed, ``silhouettes``).
    """

    in_conv: np.ndarray
    k: int | None
    history: pd.DataFrame
    tick_seconds: float
    k_buffer: int

    def summary(self) -> dict:
        """Updates, k switches and the last update's own best k, for summary.json and the report."""
        hist = self.history
        clustered = hist[hist["k"].notna()]
        switches = int((clustered["k"].diff().fillna(0) != 0).sum()) if len(clustered) else 0
        last_best = int(clustered["best_k"].iloc[-1]) if len(clustered) else None
        return {
            "tick_seconds": self.tick_seconds,
            "k_buffer": self.k_buffer,
            "updates": int(len(hist)),
            "k": self.k,
            "last_update_best_k": last_best,
            "k_switches": switches,
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
) -> ReplayResult:
    """Replay ``votes`` (with a ``timestamp`` column, ms) in time order over the participants and statements
    of ``matrix`` (the analysis's filtered matrix; ``zeroed`` its moderated-out columns).

    Votes of participants or statements not in ``matrix`` are ignored (they were filtered out). A re-vote
    replaces the earlier vote from its own update on, as in Polis.
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

    in_conv = np.zeros(n, bool)
    counts = np.zeros(n, np.int64)
    col_seen = np.zeros(m, bool)
    state: SmootherState = (None, 0, None)
    records = []
    start = 0
    for end in update_ends(times, tick_seconds):
        new = slice(start, end)
        np.add.at(counts, rows[new][is_first[new]], 1)
        col_seen[cols[new]] = True
        start = end
        in_conv = grow_in_conv(in_conv, counts, int(col_seen.sum()), min_votes)
        best, silhouettes = _best_k(
            key[:end],
            rows[:end],
            cols[:end],
            values[:end],
            matrix,
            zeroed,
            in_conv,
            base_k=base_k,
            max_groups=max_groups,
            seed=seed,
        )
        if best is not None:
            state = smooth_k(state, best, k_buffer)
        records.append(
            {
                "time_ms": float(times[end - 1]),
                "participants": int((counts > 0).sum()),
                "in_conv": int(in_conv.sum()),
                "best_k": best,
                "k": state[2] if best is not None else None,
                "silhouettes": silhouettes,
            }
        )
    history = pd.DataFrame.from_records(
        records, columns=["time_ms", "participants", "in_conv", "best_k", "k", "silhouettes"]
    )
    return ReplayResult(
        in_conv=in_conv, k=state[2], history=history, tick_seconds=tick_seconds, k_buffer=k_buffer
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
