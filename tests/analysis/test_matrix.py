"""The vote matrix: validation, latest vote wins, and the participant filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccai.analysis.matrix import build_matrix, polis_in_conv, straightliner_mask


def votes(rows):
    return pd.DataFrame(rows, columns=["participant", "statement", "vote", "timestamp"])


def test_latest_vote_wins_and_order_is_canonical():
    table = votes([(2, 10, 1, 5.0), (1, 10, -1, 1.0), (2, 10, -1, 9.0), (2, 11, 0, 3.0), (1, 10, 1, 0.5)])
    m = build_matrix(table)
    assert m.participants.tolist() == [1, 2] and m.statements.tolist() == [10, 11]
    assert m.to_frame().values.tolist() == [[1, 10, -1], [2, 10, -1], [2, 11, 0]]
    assert build_matrix(table.iloc[::-1]).content_hash() == m.content_hash()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"participant": [1], "statement": [2]}), "missing column"),
        (votes([(1, 2, 2, 0.0)]), "row 0: vote 2"),
        (votes([(1, 2, 1, 0.0), (1, None, 1, 0.0)]), "row 1: column 'statement' is empty"),
        (votes([]), "empty"),
    ],
)
def test_bad_votes_are_named(frame, message):
    with pytest.raises(ValueError, match=message):
        build_matrix(frame)


def test_polis_in_conv_threshold_and_greedy_fill():
    counts = np.array([7, 6, 10, 0, 3] + [1] * 20)
    mask = polis_in_conv(counts, n_statements=50)
    assert mask.sum() == 15  # only 2 reach 7, so the top voters fill up to 15
    assert mask[[0, 2, 1, 4]].all() and not mask[3]
    assert polis_in_conv(np.array([3, 2, 1]), n_statements=3, fill_to=0).tolist() == [True, False, False]


def test_straightliners():
    table = votes(
        [(1, s, 1, 0.0) for s in range(6)]
        + [(2, s, (-1) ** s, 0.0) for s in range(6)]
        + [(3, s, 0, 0.0) for s in range(3)]
    )
    assert straightliner_mask(build_matrix(table)).tolist() == [True, False, False]
