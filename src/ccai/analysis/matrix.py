"""The sparse participants x statements vote matrix, and the filters that decide who and what is analysed.

Votes arrive as the project's long table (``participant, statement, vote[, timestamp]``, agree = +1,
disagree = -1, pass = 0). A conversation at Polis's caps (100,000 x 10,000) is far too large to hold densely,
but it has only a few million votes, so the matrix is kept as three parallel arrays (row, column, value), from
which CSR matrices and per-row/per-column tallies are derived with ``bincount``. Passes are real entries
(value 0): "seen" means "has an entry", which a scipy sparse matrix alone would lose.

The filters are applied in a fixed order and each one records what it removed (:class:`FilterStep`), so a
report can say exactly why a participant or statement is missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

VOTE_COLUMNS = ("participant", "statement", "vote")


@dataclass(frozen=True)
class VoteMatrix:
    """Participants x statements, one entry per (participant, statement) that has a vote.

    ``participants`` and ``statements`` hold the ids of the rows and columns (sorted ascending);
    ``rows``/``cols``/``values`` hold one vote each (+1 agree, -1 disagree, 0 pass).
    """

    participants: np.ndarray
    statements: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.participants), len(self.statements)

    @property
    def n_votes(self) -> int:
        return len(self.values)

    def votes_per_participant(self) -> np.ndarray:
        """Number of entries (passes included) in each row."""
        return np.bincount(self.rows, minlength=self.shape[0])

    def keep(self, rows: np.ndarray | None = None, cols: np.ndarray | None = None) -> VoteMatrix:
        """A new matrix with only the rows / columns whose boolean mask is True (ids and order preserved)."""
        row_mask = np.ones(self.shape[0], bool) if rows is None else np.asarray(rows, bool)
        col_mask = np.ones(self.shape[1], bool) if cols is None else np.asarray(cols, bool)
        entry = row_mask[self.rows] & col_mask[self.cols]
        new_row = np.cumsum(row_mask) - 1
        new_col = np.cumsum(col_mask) - 1
        return VoteMatrix(
            participants=self.participants[row_mask],
            statements=self.statements[col_mask],
            rows=new_row[self.rows[entry]].astype(np.int32),
            cols=new_col[self.cols[entry]].astype(np.int32),
            values=self.values[entry],
        )

    def to_frame(self) -> pd.DataFrame:
        """Back to the long table (participant, statement, vote)."""
        return pd.DataFrame(
            {
                "participant": self.participants[self.rows],
                "statement": self.statements[self.cols],
                "vote": self.values.astype(np.int64),
            }
        )

    def content_hash(self) -> str:
        """sha256 of the votes (ids and values in matrix order): identical inputs give identical hashes."""
        digest = hashlib.sha256()
        for array in (self.participants, self.statements, self.rows, self.cols, self.values):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def build_matrix(votes: pd.DataFrame) -> VoteMatrix:
    """Validate the long votes table and turn it into a :class:`VoteMatrix`.

    Several rows for one (participant, statement) are re-votes: the latest (by ``timestamp`` when present,
    else the later row) wins, as in Polis.
    """
    if not isinstance(votes, pd.DataFrame):
        raise ValueError(f"votes: expected a pandas DataFrame with columns {VOTE_COLUMNS}, got {type(votes)}")
    missing = [c for c in VOTE_COLUMNS if c not in votes.columns]
    if missing:
        raise ValueError(
            f"votes: missing column(s) {missing}; expected {list(VOTE_COLUMNS)} "
            f"(+1 agree, -1 disagree, 0 pass), got {list(votes.columns)}"
        )
    if len(votes) == 0:
        raise ValueError("votes: the table is empty; nothing to analyse")
    for name in VOTE_COLUMNS:
        column = votes[name]
        if column.isna().any():
            row = int(np.flatnonzero(column.isna().to_numpy())[0])
            raise ValueError(
                f"votes: row {row}: column {name!r} is empty; every vote needs all of {VOTE_COLUMNS}"
            )
    raw = votes["vote"].to_numpy()
    try:
        value = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("votes: column 'vote' must be numeric (+1 agree, -1 disagree, 0 pass)") from exc
    bad = ~np.isin(value, (-1.0, 0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"votes: row {row}: vote {raw[row]} is not one of +1 (agree), -1 (disagree), 0 (pass)"
        )
    p_codes, p_ids = pd.factorize(votes["participant"], sort=True)
    s_codes, s_ids = pd.factorize(votes["statement"], sort=True)
    rows = p_codes.astype(np.int64)
    cols = s_codes.astype(np.int64)
    values = value.astype(np.int8)

    order = _canonical_order(votes, rows, cols, len(p_ids), len(s_ids))
    return VoteMatrix(
        participants=np.asarray(p_ids),
        statements=np.asarray(s_ids),
        rows=rows[order].astype(np.int32),
        cols=cols[order].astype(np.int32),
        values=values[order],
    )


def _canonical_order(votes: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, n: int, m: int) -> np.ndarray:
    """Indices of the kept votes (the latest per pair) in row-major order, whatever the input's order."""
    key = rows * m + cols
    if len(key) < 2 or bool(np.all(key[1:] > key[:-1])):
        return np.arange(len(key))  # already sorted, no re-votes (the formats reader's output)
    # No re-votes: a sparse matrix sorts by row in O(n) (counting sort) and within each short row.
    import scipy.sparse as sp  # here, not at the top: sorted input (the formats reader's) never needs it

    positions = sp.csr_matrix((np.arange(1, len(key) + 1, dtype=np.int64), (rows, cols)), shape=(n, m))
    positions.sum_duplicates()
    if positions.nnz == len(key):
        return positions.data - 1
    # Re-votes: sort by (pair, time) and keep the last of each pair; ties keep the input order.
    if "timestamp" in votes.columns:
        ts = votes["timestamp"].to_numpy(dtype=np.float64, na_value=-np.inf)
        order = np.lexsort((ts, key))
    else:
        order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    last = np.ones(len(order), bool)
    last[:-1] = sorted_key[1:] != sorted_key[:-1]
    return order[last]


# ---------------------------------------------------------------------------------------------------------
# Filters


@dataclass
class FilterStep:
    """One filter and what it removed (ids), in the order applied."""

    name: str
    description: str
    removed_participants: list = field(default_factory=list)
    removed_statements: list = field(default_factory=list)
    zeroed_statements: list = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "participants_removed": len(self.removed_participants),
            "statements_removed": len(self.removed_statements),
            "statements_zeroed": len(self.zeroed_statements),
        }


def polis_in_conv(counts: np.ndarray, n_statements: int, min_votes: int = 7, fill_to: int = 15) -> np.ndarray:
    """Polis's clustering filter (boolean mask over participants).

    A participant is clustered with at least ``min(min_votes, n_statements)`` votes (passes count); if that
    leaves fewer than ``fill_to``, the participants with the most votes are added until there are ``fill_to``
    (ties: the earlier row). Polis also keeps anyone who was ever in; a batch run has no history to keep.
    """
    counts = np.asarray(counts)
    mask = counts >= min(min_votes, n_statements)
    short = fill_to - int(mask.sum())
    if short > 0:
        candidates = np.flatnonzero(~mask & (counts > 0))
        ranked = candidates[np.argsort(-counts[candidates], kind="stable")]
        mask[ranked[:short]] = True
    return mask


def straightliner_mask(matrix: VoteMatrix, min_votes: int = 5) -> np.ndarray:
    """Participants with at least ``min_votes`` votes who cast the same vote on every statement they saw."""
    n = matrix.shape[0]
    counts = np.bincount(matrix.rows, minlength=n)
    lo = np.full(n, 2, np.int8)
    hi = np.full(n, -2, np.int8)
    np.minimum.at(lo, matrix.rows, matrix.values)
    np.maximum.at(hi, matrix.rows, matrix.values)
    return (counts >= min_votes) & (lo == hi)


def moderated_out(statements: pd.DataFrame | None, ids: np.ndarray) -> np.ndarray:
    """Polis's mod-out set as a mask over ``ids``: rejected (moderated == -1) or meta statements."""
    if statements is None:
        return np.zeros(len(ids), bool)
    table = statements.reindex(ids)
    out = np.zeros(len(ids), bool)
    if "moderated" in table:
        out |= table["moderated"].fillna(0).to_numpy(dtype=float) == -1
    if "is_meta" in table:
        out |= table["is_meta"].fillna(False).astype(bool).to_numpy()
    return out


def accepted(statements: pd.DataFrame | None, ids: np.ndarray) -> np.ndarray:
    """Mask over ``ids`` of statements a moderator accepted (moderated == 1) and that are not meta."""
    if statements is None or "moderated" not in statements:
        raise ValueError(
            "moderation='accepted' needs a statements table with a 'moderated' column (1 accepted, "
            "0 unmoderated, -1 rejected); pass statements=..., e.g. from the export's comments.csv"
        )
    table = statements.reindex(ids)
    keep = table["moderated"].fillna(0).to_numpy(dtype=float) == 1
    if "is_meta" in table:
        keep &= ~table["is_meta"].fillna(False).astype(bool).to_numpy()
    return keep


def as_id_array(ids: Iterable | None, like: np.ndarray) -> np.ndarray:
    """Ids given by a user (list, Series, set...) as an array comparable with ``like``."""
    if ids is None:
        return np.array([], dtype=like.dtype)
    values = np.asarray(list(ids))
    if values.size and like.dtype.kind in "iu" and values.dtype.kind not in "iu":
        try:
            values = values.astype(like.dtype)
        except ValueError as exc:
            raise ValueError(
                f"exclude: ids must be integers like the participant ids, got {values[:3]}"
            ) from exc
    return values
