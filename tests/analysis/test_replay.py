"""History rules replayed over updates: Polis's sticky clustered set and its k smoother (replay.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccai.analysis import analyze
from ccai.analysis.replay import grow_in_conv, last_shown_k, smooth_k, update_ends


def test_k_smoother_switches_only_after_four_wins_in_a_row():
    state = (None, 0, None)
    shown = []
    for best in [2, 3, 3, 3, 2, 3, 3, 3, 3, 4]:
        state = smooth_k(state, best, 4)
        shown.append(state[2])
    # the first update takes its own k; 3 wins three times, then loses once, then four times in a row
    assert shown == [2, 2, 2, 2, 2, 2, 2, 2, 3, 3]


def test_k_found_from_the_end_equals_the_smoother_run_forwards():
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 40))
        # mostly near-ties between two k, sometimes a third; a few unclusterable first updates
        best = [int(k) for k in rng.choice([2, 3, 4], size=n, p=[0.45, 0.45, 0.1])]
        lead = int(rng.integers(0, 3)) if n > 3 else 0
        seq = [None] * lead + best[lead:]
        state = (None, 0, None)
        for b in seq:
            if b is not None:
                state = smooth_k(state, b, 4)
        k, since, _ = last_shown_k(seq.__getitem__, len(seq), 4, 10_000)
        assert k == state[2], (trial, seq)
        if k is not None:
            assert seq[since] == k
    # a stable ending costs four clusterings
    calls = []
    assert last_shown_k(lambda u: calls.append(u) or 2, 1000, 4, 10)[:2] == (2, 999) and len(calls) == 4
    # over budget: undecided
    assert last_shown_k(lambda u: 2 + u % 2, 1000, 4, 10)[0] is None


def test_in_conv_is_sticky_and_filled_to_fifteen():
    counts = np.array([9, 1, 2, 0] + [8] * 10)
    first = grow_in_conv(np.zeros(14, bool), counts, n_statements=20, min_votes=7, fill_to=13)
    # 11 qualify (>= 7 votes); the fill adds the two most active others, never someone with no vote
    assert first.sum() == 13 and first[1] and first[2] and not first[3]
    later = grow_in_conv(first, np.zeros(14, np.int64), n_statements=20, min_votes=7, fill_to=13)
    assert (later >= first).all()  # nobody leaves, whatever their counts say now


def test_update_windows_group_votes_by_time():
    times = np.array([0.0, 500, 1999, 2000, 9000, 9001])
    assert update_ends(times, 2.0).tolist() == [3, 4, 6]
    with pytest.raises(ValueError, match="tick_seconds"):
        update_ends(times, 0)


def test_replay_on_a_real_conversation(load_opendata):
    export = load_opendata("london.youth.policing")
    polis = export.participants["group_id"]
    batch = analyze(export.votes, export.statements, reference_groups=polis)
    replay = analyze(
        export.vote_log, export.statements, reference_groups=polis, history="replay", tick_seconds=60
    )
    info = replay.replay
    assert info["updates"] == 17 and info["tick_seconds"] == 60 and info["k_decided"]
    assert info["updates_clustered"] <= 17
    # sticky: everyone the batch rule clusters at the end is in the replayed set too
    part_b, part_r = batch.participants, replay.participants
    assert set(part_b.index[part_b["clustered"]]) <= set(part_r.index[part_r["clustered"]])
    assert replay.clustering.k == info["k"]
    assert replay.summary()["ccai_clustering"]["replay"] == info
    assert batch.replay is None


def test_replay_needs_timestamps():
    votes = pd.DataFrame({"participant": [1, 1, 2, 2], "statement": [1, 2, 1, 2], "vote": [1, -1, 1, 1]})
    with pytest.raises(ValueError, match="timestamp"):
        analyze(votes, history="replay")
    with pytest.raises(ValueError, match="history"):
        analyze(votes, history="stream")
