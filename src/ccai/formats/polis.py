"""Read and write Polis CSV exports (both generations), so any Polis conversation can enter ccai and leave it.

Polis has shipped two export layouts. Generation "A" (the math-side "darwin" exporter behind openData) writes
``participants-votes.csv`` and millisecond timestamps; generation "B" (the 2025 server report exporter) writes
``participant-votes.csv`` (singular), ``comment-groups.csv`` and timestamps in seconds. Both write agree = +1.
Inside ccai a vote is always +1 agree, -1 disagree, 0 pass, one row per (participant, statement) holding the
latest vote, with timestamps in milliseconds.

Why a hand-rolled CSV layer: every bad cell must be reported with its file, its line as an editor shows it
(comment bodies span several lines) and its column, and nothing may be half loaded. The stdlib ``csv`` reader
is fast enough (bowling-green's 2,031 x 896 matrix parses in ~0.1 s) and keeps line numbers honest; all
conversions after it are vectorised.

To keep a round trip faithful, the header of every file read is remembered in ``PolisExport.layout``; the
writer reuses it, so columns, their order and extras come back as they were. See docs/formats.md.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np
import pandas as pd

__all__ = [
    "PolisExport",
    "PolisFormatError",
    "comment_groups_from_votes",
    "latest_votes",
    "read_id_list",
    "read_polis_export",
    "write_polis_export",
]

COMMENTS = "comments.csv"
VOTES = "votes.csv"
MATRIX_A = "participants-votes.csv"
MATRIX_B = "participant-votes.csv"
SUMMARY = "summary.csv"
COMMENT_GROUPS = "comment-groups.csv"
VOTE_TEXT = "vote-text"  # layout key: how the matrix spelled -1/0/1 when not as integers

# Timestamps below this are seconds (1e11 s is the year 5138; 1e11 ms is March 1973, before Polis existed).
_SECONDS_BELOW = 1e11

# comments.csv header -> statements column (the index "statement" is comment-id); other headers map
# '-' to '_' and are kept as extras.
_COMMENT_COLUMNS = {"comment-body": "text", "author-id": "author", "is-meta": "is_meta", "is-seed": "is_seed"}
_COMMENT_INT_EXTRAS = ("agrees", "disagrees", "passes")
_COMMENT_FLOAT_EXTRAS = ("group_informed_consensus",)
_MATRIX_META = {
    "group-id": "group_id",
    "n-comments": "n_comments",
    "n-votes": "n_votes",
    "n-agree": "n_agree",
    "n-disagree": "n_disagree",
}
_VOTE_TEXT = {"1": 1, "-1": -1, "0": 0, "+1": 1, "1.0": 1, "-1.0": -1, "0.0": 0, "-0.0": 0, "-0": 0}


class PolisFormatError(ValueError):
    """A Polis export file that cannot be read; the message names file, line, column and what was expected."""

    def __init__(
        self, message: str, *, path: Path | None = None, line: int | None = None, column: str | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column


@dataclass
class PolisExport:
    """One Polis conversation as ccai holds it (agree = +1, timestamps in ms, latest vote per pair).

    ``layout`` maps each file name that was read to its header, so that writing reproduces the source's
    columns; it is empty for exports built in code, which get the standard columns.
    """

    statements: pd.DataFrame
    votes: pd.DataFrame
    vote_log: pd.DataFrame | None
    participants: pd.DataFrame
    summary: dict[str, str]
    comment_groups: pd.DataFrame | None
    generation: str
    source: Path | None
    layout: dict[str, list[str]] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- CSV layer


def _record_line(path: Path, record: int) -> int:
    """1-based line on which non-blank CSV record ``record`` (0 = header) starts; rescans only on error."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        before = 0
        seen = -1
        for row in reader:
            if row:
                seen += 1
                if seen == record:
                    return before + 1
            before = reader.line_num
    return before + 1


# A column of plain integers: no spaces, no empty cells, at most 18 digits (so int64 holds every value).
_PLAIN_INTS = re.compile(r"(?:-?[0-9]{1,18}\n)*-?[0-9]{1,18}")


def _plain_ints(column: np.ndarray) -> np.ndarray | None:
    """The column as int64 when every cell is a plain integer, else None (the general path then parses it).

    Why: ids and counts columns are almost always plain; ``pd.to_numeric`` on object strings cost
    ~2.5 ms a column, 11 columns per export. Anything unusual (spaces, empty cells, decimals, huge
    numbers) goes the general way, which also names the first bad cell.
    """
    if len(column) == 0:
        return None
    text = "\n".join(column)
    if _PLAIN_INTS.fullmatch(text) is None:
        return None
    cells = text.split("\n")
    if len(cells) != len(column):  # a quoted cell held a line break: not plain
        return None
    return np.array(cells).astype(np.int64)


@dataclass
class _Table:
    """A CSV file as a header and its rows of cells, able to point at any cell's line.

    ``cells`` (an object array of every cell) is built on first use: the usual vote matrix is parsed from
    ``rows`` directly, and building 1.8M-cell arrays it never needs cost bowling-green ~0.05 s."""

    path: Path
    header: list[str]
    rows: list[list[str]]  # the body, each row len(header) long

    @functools.cached_property
    def cells(self) -> np.ndarray:
        """(rows, len(header)) object array of str."""
        cells = np.empty((len(self.rows), len(self.header)), dtype=object)
        if self.rows:
            cells[:] = self.rows
        return cells

    @classmethod
    def read(cls, path: Path, *, header: bool = True, width: int | None = None) -> _Table:
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                # strict: a quote that never closes (a file cut off inside a comment body) is an error,
                # not one giant field that silently swallows every later row.
                reader = csv.reader(fh, strict=True)
                rows = []
                start = 1
                try:
                    for row in reader:
                        rows.append(row)
                        start = reader.line_num + 1
                except csv.Error as err:
                    if "unexpected end of data" in str(err):
                        message = (
                            f"{path.name} line {start}: a quoted field opened here is never closed "
                            f"(the file ends inside it at line {reader.line_num}; was it cut off?)"
                        )
                    else:
                        message = (
                            f"{path.name} line {reader.line_num}: malformed CSV ({err}) in the record "
                            f"that starts on line {start}; is a quote inside a field not doubled?"
                        )
                    raise PolisFormatError(message, path=path, line=start) from None
        except UnicodeDecodeError as err:
            raise PolisFormatError(
                f"{path.name}: not UTF-8 text ({err.reason} at byte {err.start}); Polis exports are UTF-8",
                path=path,
            ) from None
        rows = [r for r in rows if r]
        if header:
            if not rows:
                raise PolisFormatError(
                    f"{path.name}: the file is empty; expected a header line", path=path, line=1
                )
            head, body = [h.strip() for h in rows[0]], rows[1:]
        else:
            head, body = [str(i) for i in range(width or 1)], rows
        width = len(head)
        why = "as in the header" if header else "key,value"
        lengths = np.fromiter(map(len, body), dtype=np.int64, count=len(body))
        bad = np.flatnonzero(lengths != width)
        if bad.size:
            i = int(bad[0])
            line = _record_line(path, i + (1 if header else 0))
            raise PolisFormatError(
                f"{path.name} line {line}: expected {width} fields ({why}), found {lengths[i]}",
                path=path,
                line=line,
            )
        return cls(path, head, body)

    def line_of(self, row: int) -> int:
        return _record_line(self.path, row + 1)

    def fail(self, row: int, column: str, expected: str, got: object) -> NoReturn:
        line = self.line_of(row)
        raise PolisFormatError(
            f"{self.path.name} line {line}, column '{column}': {expected}, got {got!r}",
            path=self.path,
            line=line,
            column=column,
        )

    def require(self, *names: str) -> None:
        missing = [n for n in names if n not in self.header]
        if missing:
            raise PolisFormatError(
                f"{self.path.name}: missing required column(s) {', '.join(repr(m) for m in missing)}; "
                f"the header has {', '.join(self.header) or 'nothing'}",
                path=self.path,
                line=1,
                column=missing[0],
            )
        dupes = sorted(h for h, n in Counter(self.header).items() if n > 1)  # not list.count: O(width²)
        if dupes:
            raise PolisFormatError(
                f"{self.path.name} line 1: column(s) {', '.join(dupes)} appear twice",
                path=self.path,
                line=1,
                column=dupes[0],
            )

    def col(self, name: str) -> np.ndarray:
        i = self.header.index(name)
        if "cells" in self.__dict__:
            return self.cells[:, i]
        column = np.empty(len(self.rows), dtype=object)
        column[:] = [row[i] for row in self.rows]
        return column

    # Vectorised typed columns: each names the first bad cell exactly.
    def ints(self, name: str, *, allow_empty: bool = False, minimum: int | None = None) -> pd.Series:
        plain = _plain_ints(self.col(name))
        if plain is not None and (minimum is None or plain.min() >= minimum):
            return pd.Series(plain, dtype="Int64")
        raw = pd.Series(self.col(name), dtype=object).str.strip()
        empty = raw.eq("")
        num = pd.to_numeric(raw.where(~empty), errors="coerce")
        bad = (num.isna() & ~empty) | (num.notna() & (num % 1 != 0))
        if minimum is not None:
            bad |= num.lt(minimum)
        if not allow_empty:
            bad |= empty
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            lowest = f" >= {minimum}" if minimum is not None else ""
            self.fail(
                i,
                name,
                f"expected an integer{lowest}{' or nothing' if allow_empty else ''}",
                self.col(name)[i],
            )
        return num.astype("Int64")

    def floats(self, name: str) -> pd.Series:
        raw = pd.Series(self.col(name), dtype=object).str.strip()
        empty = raw.eq("")
        num = pd.to_numeric(raw.where(~empty), errors="coerce").astype(float)
        bad = num.isna() & ~empty
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            self.fail(i, name, "expected a number or nothing", self.col(name)[i])
        return num

    def bools(self, name: str) -> pd.Series:
        raw = pd.Series(self.col(name), dtype=object).str.strip().str.lower()
        truth = {"true": True, "false": False, "1": True, "0": False, "": False, "t": True, "f": False}
        mapped = raw.map(truth)
        if mapped.isna().any():
            i = int(np.flatnonzero(mapped.isna().to_numpy())[0])
            self.fail(i, name, "expected true or false", self.col(name)[i])
        return mapped.astype(bool)

    def timestamps_ms(self, name: str) -> tuple[pd.Series, bool]:
        """Timestamps in ms, and whether the file held seconds (detected: every value below 1e11)."""
        ts = self.floats(name)
        seconds = bool(ts.notna().any() and ts.max() < _SECONDS_BELOW)
        return (ts * 1000.0 if seconds else ts), seconds


def _votes_from_text(
    table: _Table,
    values: np.ndarray,
    columns: Sequence[str],
    *,
    sign: int = 1,
    expected: str = "expected -1, 0 or 1 (or nothing)",
) -> np.ndarray:
    """Parse a 2-D block of vote cells into float (+1/-1/0, NaN for empty); names the first bad cell."""
    codes, uniques = pd.factorize(values.ravel(), use_na_sentinel=True)
    lookup = np.full(len(uniques) + 1, np.nan)
    for k, text in enumerate(uniques):
        key = str(text).strip()
        if key == "":
            continue
        if key not in _VOTE_TEXT:
            flat = int(np.flatnonzero(codes == k)[0])
            r, c = divmod(flat, values.shape[1])
            table.fail(r, columns[c], expected, text)
        lookup[k] = _VOTE_TEXT[key] * sign
    return lookup[codes].reshape(values.shape)


_COMMA, _ZERO, _ONE, _MINUS = (ord(c) for c in ",01-")


def _canonical_votes(lines: list[str], shape: tuple[int, int]) -> np.ndarray | None:
    """The usual vote block, every cell exactly '', '1', '0' or '-1', parsed from its bytes; None for any
    other spelling (then the general path parses it and names a bad cell). ``lines``: each row's vote cells
    joined by commas; ``shape``: (rows, cells per row).

    Why: hashing bowling-green's 1.8M cell strings (``pd.factorize``) took ~0.2 s, a tenth of a whole
    ``ccai analyze``. Here every check is a comparison of the byte array with itself shifted by one or two
    places (no per-cell work in Python, no gathers).
    """
    if not shape[0] * shape[1]:
        return None
    try:
        raw = ",".join(lines).encode("ascii")
    except UnicodeEncodeError:
        return None
    data = np.frombuffer(b",," + raw + b",", np.uint8)  # two leading commas: every cell has two bytes before
    comma = data == _COMMA
    if int(comma.sum()) != shape[0] * shape[1] + 2:
        return None  # a comma inside a cell
    digit = (data == _ZERO) | (data == _ONE)
    minus = data == _MINUS
    if not (comma | digit | minus).all():
        return None
    # a digit ends its cell and follows a comma or a minus; a minus follows a comma and precedes a 1
    if not (comma[1:][digit[:-1]].all() and (comma | minus)[:-1][digit[1:]].all()):
        return None
    if not (minus[1:] <= (data[:-1] == _COMMA)).all() or not (data[1:][minus[:-1]] == _ONE).all():
        return None
    ends = comma[2:]  # the comma that closes each cell, aligned with the two bytes before it
    before, before2 = data[1:-1][ends], data[:-2][ends]
    out = np.where(before == _COMMA, np.nan, np.where(before2 == _MINUS, -1.0, (before == _ONE) * 1.0))
    return out.reshape(shape)


def _extra_column(table: _Table, header: str, kind: str | None = None) -> pd.Series:
    """An exported column ccai does not interpret: numeric when that is lossless, else the text itself."""
    if kind == "int":
        return table.ints(header, allow_empty=True)
    if kind == "float":
        return table.floats(header)
    raw = pd.Series(table.col(header), dtype=object)
    filled = raw[raw != ""]
    if len(filled) and all(t == t.strip() for t in filled.iloc[:50]):
        num = pd.to_numeric(filled, errors="coerce")
        if num.notna().all():
            if num.dtype.kind in "iu" and (num.astype(str) == filled).all():
                return pd.to_numeric(raw.where(raw != ""), errors="coerce").astype("Int64")
            if num.dtype.kind == "f" and (num.map(repr) == filled).all():
                return pd.to_numeric(raw.where(raw != ""), errors="coerce").astype(float)
    return raw.astype(object)


# ---------------------------------------------------------------------------------------------- readers


def _read_summary(path: Path) -> dict[str, str]:
    table = _Table.read(path, header=False, width=2)
    summary: dict[str, str] = {}
    for i, (key, value) in enumerate(table.cells):
        if key in summary:
            line = _record_line(path, i)
            raise PolisFormatError(
                f"{path.name} line {line}: key {key!r} appears twice", path=path, line=line
            )
        summary[str(key)] = str(value)
    return summary


def _read_statements(path: Path) -> tuple[pd.DataFrame, list[str], bool]:
    table = _Table.read(path)
    table.require("comment-id", "comment-body")
    ids = table.ints("comment-id", minimum=0)
    dupes = ids.duplicated()
    if dupes.any():
        i = int(np.flatnonzero(dupes.to_numpy())[0])
        table.fail(i, "comment-id", "expected each comment-id once", table.col("comment-id")[i])
    data: dict[str, pd.Series] = {}
    seconds = False
    for header in table.header:
        name = _COMMENT_COLUMNS.get(header, header.replace("-", "_"))
        if header == "comment-id":
            continue
        if header == "comment-body":
            data[name] = pd.Series(table.col(header), dtype=object)
        elif header == "author-id":
            data[name] = table.ints(header, allow_empty=True, minimum=0)
        elif header == "moderated":
            mod = table.ints(header, allow_empty=True)
            bad = mod.notna() & ~mod.isin([-1, 0, 1])
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                table.fail(i, header, "expected -1, 0 or 1", table.col(header)[i])
            data[name] = mod.fillna(0).astype(np.int64)
        elif header in ("is-meta", "is-seed"):
            data[name] = table.bools(header)
        elif header == "timestamp":
            data[name], seconds = table.timestamps_ms(header)
        elif name in _COMMENT_INT_EXTRAS:
            data[name] = _extra_column(table, header, "int")
        elif name in _COMMENT_FLOAT_EXTRAS:
            data[name] = _extra_column(table, header, "float")
        else:
            data[name] = _extra_column(table, header)
    frame = pd.DataFrame(data)
    frame.index = pd.Index(ids.astype(np.int64).to_numpy(), name="statement")
    return _complete_statements(frame), table.header, seconds


def _complete_statements(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the always-present columns (text, author, moderated, is_meta, is_seed, timestamp) in front."""
    n = len(frame)
    defaults = {
        "text": pd.Series([""] * n, index=frame.index, dtype=object),
        "author": pd.Series(pd.NA, index=frame.index, dtype="Int64"),
        "moderated": pd.Series(0, index=frame.index, dtype=np.int64),
        "is_meta": pd.Series(False, index=frame.index, dtype=bool),
        "is_seed": pd.Series(False, index=frame.index, dtype=bool),
        "timestamp": pd.Series(np.nan, index=frame.index, dtype=float),
    }
    core = {k: frame.get(k, v) for k, v in defaults.items()}
    extras = [c for c in frame.columns if c not in core]
    out = pd.concat([pd.DataFrame(core, index=frame.index), frame[extras]], axis=1)
    out.index.name = "statement"
    return out


def _read_vote_log(path: Path, sign: int) -> tuple[pd.DataFrame, list[str], bool]:
    table = _Table.read(path)
    table.require("comment-id", "voter-id", "vote")
    participant = table.ints("voter-id", minimum=0).astype(np.int64)
    statement = table.ints("comment-id", minimum=0).astype(np.int64)
    vote = _votes_from_text(
        table, table.col("vote")[:, None], ["vote"], sign=sign, expected="expected -1, 0 or 1"
    )[:, 0]
    missing = np.isnan(vote)
    if missing.any():
        table.fail(int(np.flatnonzero(missing)[0]), "vote", "expected -1, 0 or 1", "")
    if "timestamp" in table.header:
        timestamp, seconds = table.timestamps_ms("timestamp")
    else:
        timestamp, seconds = pd.Series(np.nan, index=range(len(vote))), False
    log = pd.DataFrame(
        {
            "participant": participant.to_numpy(),
            "statement": statement.to_numpy(),
            "vote": vote.astype(np.int8),
            "timestamp": timestamp.to_numpy(dtype=float),
        }
    )
    if "datetime" in table.header:
        log["datetime"] = table.col("datetime")
    return log, table.header, seconds


def latest_votes(log: pd.DataFrame) -> pd.DataFrame:
    """The vote that counts for each (participant, statement): the latest by timestamp (ties and unknown
    timestamps: the later row in the log), sorted by participant then statement."""
    ordered = log
    if len(log) and log["timestamp"].notna().all():
        ordered = log.iloc[np.argsort(log["timestamp"].to_numpy(), kind="stable")]
    latest = ordered.drop_duplicates(["participant", "statement"], keep="last")
    out = latest[["participant", "statement", "vote", "timestamp"]].sort_values(["participant", "statement"])
    return out.reset_index(drop=True)


def _read_matrix(path: Path, sign: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str], bool]:
    table = _Table.read(path)
    table.require("participant")
    vote_cols = [i for i, h in enumerate(table.header) if h.isdigit()]
    tids = np.array([int(table.header[i]) for i in vote_cols], dtype=np.int64)
    if len(set(tids.tolist())) != len(tids):
        raise PolisFormatError(f"{path.name} line 1: a comment-id column appears twice", path=path, line=1)
    pids = table.ints("participant", minimum=0).astype(np.int64)
    dupes = pids.duplicated()
    if dupes.any():
        i = int(np.flatnonzero(dupes.to_numpy())[0])
        table.fail(i, "participant", "expected each participant once", table.col("participant")[i])
    data: dict[str, pd.Series] = {}
    for i, header in enumerate(table.header):
        if i in vote_cols or header == "participant":
            continue
        name = _MATRIX_META.get(header, header.replace("-", "_"))
        if header == "xid":
            raw = pd.Series(table.col(header), dtype=object)
            data[name] = raw.where(raw != "").astype("string")
        elif header in _MATRIX_META:
            data[name] = table.ints(header, allow_empty=True, minimum=0)
        else:
            data[name] = _extra_column(table, header)
    participants = pd.DataFrame(data)
    participants.index = pd.Index(pids.to_numpy(), name="participant")
    participants = _complete_participants(participants)
    values = None
    if vote_cols and vote_cols == list(range(vote_cols[0], vote_cols[-1] + 1)):  # the usual layout
        first, stop = vote_cols[0], vote_cols[-1] + 1
        lines = [",".join(row[first:stop]) for row in table.rows]
        values = _canonical_votes(lines, (len(table.rows), stop - first))
    decimal = False
    if values is not None:
        values = -values if sign < 0 else values
    else:  # other spellings (1.0, +1, spaces) or a bad cell, which this names
        block = table.cells[:, vote_cols] if vote_cols else np.empty((len(pids), 0), dtype=object)
        values = _votes_from_text(table, block, [table.header[i] for i in vote_cols], sign=sign)
        decimal = bool(block.size) and any(str(u).strip().endswith(".0") for u in pd.unique(block.ravel()))
    r, c = np.nonzero(~np.isnan(values))
    participant, statement = pids.to_numpy()[r], tids[c]
    order = np.lexsort((statement, participant))  # by participant, then statement (pairs are unique)
    votes = pd.DataFrame(
        {
            "participant": participant[order],
            "statement": statement[order],
            "vote": values[r, c].astype(np.int8)[order],
            "timestamp": np.nan,
        }
    )
    return votes, participants, table.header, decimal


def _complete_participants(frame: pd.DataFrame) -> pd.DataFrame:
    core = {
        "xid": frame["xid"] if "xid" in frame else pd.Series(pd.NA, index=frame.index, dtype="string"),
        "group_id": frame["group_id"]
        if "group_id" in frame
        else pd.Series(pd.NA, index=frame.index, dtype="Int64"),
    }
    rest = [c for c in frame.columns if c not in core]
    out = pd.concat([pd.DataFrame(core, index=frame.index), frame[rest]], axis=1)
    out.index.name = "participant"
    return out


def _read_comment_groups(path: Path) -> pd.DataFrame:
    table = _Table.read(path)
    table.require("comment-id", "comment")
    data: dict[str, pd.Series] = {}
    for header in table.header:
        if header == "comment":
            data[header] = pd.Series(table.col(header), dtype=object)
        else:
            data[header] = table.ints(header, minimum=0).astype(np.int64)
    return pd.DataFrame(data)


def read_id_list(path: str | Path) -> list[int]:
    """Ids one per line, no header: e.g. the CCAI organisers' ``ids-to-toss.csv`` (participants to drop)."""
    path = Path(path)
    if not path.is_file():
        raise PolisFormatError(f"{path}: id list not found", path=path)
    ids: list[int] = []
    with path.open(encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, start=1):
            text = line.strip().rstrip(",").strip()
            if not text:
                continue
            if not text.lstrip("-").isdigit() or int(text) < 0:
                raise PolisFormatError(
                    f"{path.name} line {n}: expected one non-negative integer id per line, got {text!r}",
                    path=path,
                    line=n,
                    column="1",
                )
            ids.append(int(text))
    return ids


def _resolve(directory: Path, name: str | None, default: Sequence[str]) -> Path | None:
    if name is not None:
        candidate = Path(name)
        candidate = candidate if candidate.is_absolute() else directory / candidate
        if not candidate.is_file():
            raise PolisFormatError(f"{candidate}: file not found", path=candidate)
        return candidate
    for option in default:
        if (directory / option).is_file():
            return directory / option
    return None


def read_polis_export(
    path: str | Path,
    *,
    comments: str | None = None,
    participants_votes: str | None = None,
    votes_sign: Literal["export", "db"] = "export",
) -> PolisExport:
    """Load a Polis export directory of either generation, from whichever of its files exist.

    ``comments`` / ``participants_votes`` name other files to use in their place (the CCAI organisers'
    ``clean_comments.csv`` / ``clean_votes.csv``). ``votes_sign="db"`` is for dumps of the Polis database or
    API, where -1 means agree; every CSV export uses +1 = agree. Votes come from ``votes.csv`` (latest vote
    per pair) when it exists, else from the participants-votes matrix. Raises :class:`PolisFormatError`.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise PolisFormatError(
            f"{directory}: not a directory (expected a Polis export folder)", path=directory
        )
    if votes_sign not in ("export", "db"):
        raise ValueError(f"votes_sign must be 'export' or 'db', got {votes_sign!r}")
    sign = 1 if votes_sign == "export" else -1
    comments_path = _resolve(directory, comments, [COMMENTS])
    matrix_path = _resolve(directory, participants_votes, [MATRIX_A, MATRIX_B])
    votes_path = _resolve(directory, None, [VOTES])
    summary_path = _resolve(directory, None, [SUMMARY])
    groups_path = _resolve(directory, None, [COMMENT_GROUPS])
    if not any([comments_path, matrix_path, votes_path]):
        raise PolisFormatError(
            f"{directory}: no Polis export files found (expected {COMMENTS}, {VOTES}, "
            f"{MATRIX_A} or {MATRIX_B})",
            path=directory,
        )

    layout: dict[str, list[str]] = {}
    seconds_seen = False
    statements = None
    if comments_path is not None:
        statements, layout[COMMENTS], secs = _read_statements(comments_path)
        seconds_seen |= secs
    vote_log = None
    votes = participants = None
    if votes_path is not None:
        vote_log, layout[VOTES], secs = _read_vote_log(votes_path, sign)
        seconds_seen |= secs
        votes = latest_votes(vote_log)
    if matrix_path is not None:
        matrix_votes, participants, header, decimal = _read_matrix(matrix_path, sign)
        layout[MATRIX_B if matrix_path.name == MATRIX_B else MATRIX_A] = header
        if decimal:  # the CCAI organisers' clean_votes.csv writes 1.0/-1.0/0.0; keep that on writing
            layout[VOTE_TEXT] = ["-1.0", "0.0", "1.0"]
        if votes is None:
            votes = matrix_votes
    if votes is None:
        votes = pd.DataFrame(
            {
                "participant": np.array([], np.int64),
                "statement": np.array([], np.int64),
                "vote": np.array([], np.int8),
                "timestamp": np.array([], float),
            }
        )
    voters = np.unique(votes["participant"].to_numpy())
    if participants is None:
        participants = _complete_participants(pd.DataFrame(index=pd.Index(voters, name="participant")))
    else:
        extra = np.setdiff1d(voters, participants.index.to_numpy())
        if extra.size:
            participants = pd.concat(
                [
                    participants,
                    _complete_participants(pd.DataFrame(index=pd.Index(extra, name="participant"))),
                ]
            )
            participants.index.name = "participant"
    if statements is None:
        tids = np.unique(votes["statement"].to_numpy())
        statements = _complete_statements(pd.DataFrame(index=pd.Index(tids, name="statement")))
    summary = _read_summary(summary_path) if summary_path is not None else {}
    comment_groups = _read_comment_groups(groups_path) if groups_path is not None else None
    # The matrix's file name is the surest sign of the generation, then the timestamp unit; ccai writes
    # comment-groups.csv for both, so it only decides when nothing else does.
    if matrix_path is not None and matrix_path.name in (MATRIX_A, MATRIX_B):
        is_b = matrix_path.name == MATRIX_B
    elif seconds_seen or statements["timestamp"].notna().any() or votes["timestamp"].notna().any():
        is_b = seconds_seen
    else:
        is_b = groups_path is not None
    return PolisExport(
        statements=statements,
        votes=votes,
        vote_log=vote_log,
        participants=participants,
        summary=summary,
        comment_groups=comment_groups,
        generation="B" if is_b else "A",
        source=directory,
        layout=layout,
    )


# ---------------------------------------------------------------------------------------------- writers


def _fmt(series: pd.Series, *, integral_floats: bool = False) -> np.ndarray:
    """Cells as text: NA -> '', bools lower-case, floats by shortest round-trip repr."""
    s = series
    if pd.api.types.is_bool_dtype(s.dtype):
        return np.where(s.to_numpy(dtype=bool), "true", "false").astype(object)
    if pd.api.types.is_integer_dtype(s.dtype):
        na = s.isna().to_numpy()
        out = s.astype("Int64").astype(str).to_numpy(dtype=object)
        out[na] = ""
        return out
    if pd.api.types.is_float_dtype(s.dtype):
        vals = s.to_numpy(dtype=float)
        out = np.full(len(vals), "", dtype=object)
        known = ~np.isnan(vals)
        whole = known & (vals == np.floor(vals)) if integral_floats else np.zeros(len(vals), bool)
        out[whole] = vals[whole].astype(np.int64).astype(str)
        rest = known & ~whole
        out[rest] = [repr(float(v)) for v in vals[rest]]
        return out
    out = s.astype(object).to_numpy(dtype=object).copy()
    out[pd.isna(out)] = ""
    return np.array([str(v) for v in out], dtype=object)


def _fmt_timestamps(ms: pd.Series, generation: str) -> np.ndarray:
    if generation == "B":
        return _fmt(np.floor(ms / 1000.0), integral_floats=True)
    return _fmt(ms, integral_floats=True)


def _counts(votes: pd.DataFrame, by: str, index: pd.Index) -> pd.DataFrame:
    v = votes["vote"].to_numpy()
    frame = pd.DataFrame({by: votes[by].to_numpy(), "agree": v == 1, "disagree": v == -1, "pass": v == 0})
    sums = frame.groupby(by).sum().reindex(index, fill_value=0).astype(np.int64)
    sums["votes"] = sums[["agree", "disagree", "pass"]].sum(axis=1)
    return sums


def comment_groups_from_votes(
    statements: pd.DataFrame, votes: pd.DataFrame, participants: pd.DataFrame
) -> pd.DataFrame:
    """``comment-groups.csv`` as the 2025 Polis exporter defines it: per statement, agree/disagree/pass counts
    among each group's members (``participants.group_id``; ungrouped participants are not counted) and totals
    summed over the groups. One row per statement with at least one vote, in statement-id order."""
    gid = participants["group_id"].reindex(votes["participant"].to_numpy()).to_numpy()
    grouped = ~pd.isna(gid)
    gv = votes[grouped].assign(group=gid[grouped].astype(np.int64))
    tids = np.unique(votes["statement"].to_numpy())
    groups = sorted(int(g) for g in pd.unique(participants["group_id"].dropna()))
    text = statements["text"].reindex(tids) if "text" in statements else pd.Series("", index=tids)
    out = pd.DataFrame(
        {"comment-id": tids, "comment": pd.Series(text.fillna("").to_numpy(dtype=object), dtype=object)}
    )
    totals = np.zeros((len(tids), 4), dtype=np.int64)
    per_group = []
    for g in groups:
        c = _counts(gv[gv["group"] == g], "statement", pd.Index(tids))
        block = c[["votes", "agree", "disagree", "pass"]].to_numpy()
        totals += block
        per_group.append((g, block))
    for k, name in enumerate(["total-votes", "total-agrees", "total-disagrees", "total-passes"]):
        out[name] = totals[:, k]
    for g, block in per_group:
        letter = chr(ord("a") + g) if 0 <= g < 26 else str(g)
        for k, part in enumerate(["votes", "agrees", "disagrees", "passes"]):
            out[f"group-{letter}-{part}"] = block[:, k]
    return out


def _sheet(header: list[str], columns: dict[str, np.ndarray], n: int) -> tuple[list[str], np.ndarray]:
    """Header and a (rows, columns) object array of text, ready for csv.writer (no pandas in the loop)."""
    grid = np.empty((n, len(header)), dtype=object)
    for j, h in enumerate(header):
        grid[:, j] = columns[h]
    return header, grid


def _statements_sheet(export: PolisExport, add_meta: bool) -> tuple[list[str], np.ndarray]:
    st = export.statements
    header = list(export.layout.get(COMMENTS, []))
    if not header:
        # Generation B's exporter has no is-meta/is-seed; the newest generation-A files (bg2050) do.
        header = ["timestamp", "datetime", "comment-id", "author-id", "agrees", "disagrees", "moderated"]
        if export.generation == "A" or add_meta:
            header += ["is-meta", "is-seed"]
        known = {
            "text",
            "author",
            "moderated",
            "is_meta",
            "is_seed",
            "timestamp",
            "datetime",
            "agrees",
            "disagrees",
        }
        header += [
            ("group-informed-consensus" if c == "group_informed_consensus" else c)
            for c in st.columns
            if c not in known
        ]
        header.append("comment-body")
    elif add_meta:
        at = header.index("comment-body") if "comment-body" in header else len(header)
        for name in ("is-seed", "is-meta"):
            if name not in header:
                header.insert(at, name)
    counted = None
    out: dict[str, np.ndarray] = {}
    for h in header:
        col = _COMMENT_COLUMNS.get(h, h.replace("-", "_"))
        if h == "comment-id":
            out[h] = np.array([str(i) for i in st.index], dtype=object)
        elif h == "timestamp":
            out[h] = _fmt_timestamps(st["timestamp"], export.generation)
        elif col in st.columns:
            out[h] = _fmt(st[col])
        elif col in ("agrees", "disagrees", "passes"):
            if counted is None:
                counted = _counts(
                    export.vote_log if export.vote_log is not None else export.votes, "statement", st.index
                )
            out[h] = _fmt(counted[{"agrees": "agree", "disagrees": "disagree", "passes": "pass"}[col]])
        else:
            out[h] = np.full(len(st), "", dtype=object)
    return _sheet(header, out, len(st))


def _votes_sheet(export: PolisExport) -> tuple[list[str], np.ndarray]:
    log = export.vote_log
    if log is not None:
        mine = latest_votes(log)[["participant", "statement", "vote"]].reset_index(drop=True)
        theirs = export.votes[["participant", "statement", "vote"]].sort_values(["participant", "statement"])
        if not mine.equals(theirs.reset_index(drop=True).astype(mine.dtypes.to_dict())):
            raise ValueError(
                "export.vote_log disagrees with export.votes (the latest vote per pair); set "
                "vote_log=None to write only the latest votes"
            )
    source = log if log is not None else export.votes
    header = list(export.layout.get(VOTES, [])) or ["timestamp", "datetime", "comment-id", "voter-id", "vote"]
    out: dict[str, np.ndarray] = {}
    for h in header:
        if h == "timestamp":
            out[h] = _fmt_timestamps(source["timestamp"], export.generation)
        elif h == "comment-id":
            out[h] = source["statement"].astype(np.int64).astype(str).to_numpy(dtype=object)
        elif h == "voter-id":
            out[h] = source["participant"].astype(np.int64).astype(str).to_numpy(dtype=object)
        elif h == "vote":
            out[h] = source["vote"].astype(np.int64).astype(str).to_numpy(dtype=object)
        elif h in source.columns:
            out[h] = _fmt(source[h])
        else:
            out[h] = np.full(len(source), "", dtype=object)
    return _sheet(header, out, len(source))


def _matrix_sheet(export: PolisExport, name: str) -> tuple[list[str], np.ndarray]:
    votes, parts, st = export.votes, export.participants, export.statements
    pids = parts.index.to_numpy(dtype=np.int64)
    missing = np.setdiff1d(np.unique(votes["participant"].to_numpy()), pids)
    pids = np.concatenate([pids, missing])
    voted = np.unique(votes["statement"].to_numpy())
    header = list(export.layout.get(name, []))
    if header:
        meta = [h for h in header if not h.isdigit()]
        known = set(st.index.tolist()) | set(voted.tolist())
        tids = [int(h) for h in header if h.isdigit() and int(h) in known]
        tids += sorted(set(voted.tolist()) - set(tids))
    else:
        meta = ["participant"]
        if export.generation == "A" and parts["xid"].notna().any():
            meta.append("xid")
        meta += ["group-id", "n-comments", "n-votes", "n-agree", "n-disagree"]
        tids = sorted(set(voted.tolist()) | (set(st.index.tolist()) if export.generation == "B" else set()))
    counts = None
    cols: dict[str, np.ndarray] = {}
    full = parts.reindex(pids)
    for h in meta:
        col = _MATRIX_META.get(h, h.replace("-", "_"))
        if h == "participant":
            cols[h] = pids.astype(str).astype(object)
        elif col in parts.columns and (
            col not in ("n_comments", "n_votes", "n_agree", "n_disagree") or not full[col].isna().any()
        ):
            cols[h] = _fmt(full[col])
        elif col in ("n_comments", "n_votes", "n_agree", "n_disagree"):
            if counts is None:
                counts = _counts(votes, "participant", pd.Index(pids))
                authors = st["author"].dropna().astype(np.int64) if "author" in st else pd.Series([], "int64")
                counts["comments"] = authors.value_counts().reindex(pids, fill_value=0).to_numpy()
            key = {"n_comments": "comments", "n_votes": "votes", "n_agree": "agree", "n_disagree": "disagree"}
            cols[h] = _fmt(counts[key[col]])
        else:
            cols[h] = np.full(len(pids), "", dtype=object)
    grid = np.full((len(pids), len(tids)), "", dtype=object)
    if len(tids) and len(votes):
        row = pd.Index(pids).get_indexer(votes["participant"].to_numpy())
        col = pd.Index(tids).get_indexer(votes["statement"].to_numpy())
        text = np.array(export.layout.get(VOTE_TEXT, ["-1", "0", "1"]), dtype=object)
        grid[row, col] = text[votes["vote"].to_numpy().astype(int) + 1]
    _, left = _sheet(meta, cols, len(pids))
    return meta + [str(t) for t in tids], np.concatenate([left, grid], axis=1)


def _default_summary(export: PolisExport) -> dict[str, str]:
    parts, st = export.participants, export.statements
    groups = parts["group_id"].dropna()
    return {
        "topic": "",
        "url": "",
        "voters": str(export.votes["participant"].nunique()),
        "voters-in-conv": str(len(groups)),
        "commenters": str(st["author"].nunique()) if "author" in st else "0",
        "comments": str(len(st)),
        "groups": str(groups.nunique()),
        "conversation-description": "",
    }


def _write_csv(path: Path, header: Iterable[str] | None, rows: Iterable[Sequence[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if header is not None:
            writer.writerow(list(header))
        writer.writerows(rows)


def write_polis_export(export: PolisExport, path: str | Path, *, add_meta: bool = False) -> list[Path]:
    """Write the five export files (comments, votes, participants-votes, summary, comment-groups).

    Votes are written agree = +1; ``votes.csv`` holds ``vote_log`` when present (every re-vote), else the
    latest votes. Generation "B" exports get ``participant-votes.csv`` and second timestamps. The source's
    headers (``export.layout``) are kept; ``add_meta=True`` adds ``is-meta``/``is-seed`` to comments.csv when
    the source lacked them (red-dwarf needs them). Files appear all together or not at all.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    export = replace(
        export,
        statements=_complete_statements(export.statements),
        participants=_complete_participants(export.participants),
    )
    matrix_name = MATRIX_B if export.generation == "B" else MATRIX_A
    groups = export.comment_groups
    if groups is None:
        groups = comment_groups_from_votes(export.statements, export.votes, export.participants)
    sheets = {
        COMMENTS: _statements_sheet(export, add_meta),
        VOTES: _votes_sheet(export),
        matrix_name: _matrix_sheet(export, matrix_name),
        COMMENT_GROUPS: _sheet(list(groups), {c: _fmt(groups[c]) for c in groups}, len(groups)),
    }
    summary = export.summary or _default_summary(export)
    written: list[Path] = []
    temps: list[tuple[Path, Path]] = []
    try:
        for name, (header, grid) in sheets.items():
            tmp = directory / f".{name}.tmp"
            _write_csv(tmp, header, grid.tolist())
            temps.append((tmp, directory / name))
        tmp = directory / f".{SUMMARY}.tmp"
        _write_csv(tmp, None, [(k, v) for k, v in summary.items()])
        temps.append((tmp, directory / SUMMARY))
        for tmp, final in temps:
            os.replace(tmp, final)
            written.append(final)
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
    return written
