"""Polis exports in and out: real conversations round-trip, signs and re-votes hold, bad files are named."""

from __future__ import annotations

import csv
import filecmp
import functools
import http.server
import threading
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ccai.formats.polis import (
    PolisFormatError,
    comment_groups_from_votes,
    latest_votes,
    read_id_list,
    read_polis_export,
    write_polis_export,
)

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = [
    "15-per-hour-seattle",
    "bg2050-volunteers",
    "brexit-consensus",
    "london.youth.policing",
    "scoop-hivemind.ubi",
    "austria-climate.5tzfrp5eaa.2022-07-07",
]
HEAVY = [
    "american-assembly.bowling-green",
    "austria-climate.2vkxcncppn.2022-07-07",
    "austria-climate.5twd2jsnkf.2022-08-08",
    "austria-climate.7z7ejpbmv5.2022-08-08",
    "austria-climate.9xnndurbfm.2022-07-07",
    "canadian-electoral-reform",
    "football-concussions",
    "march-on.operation-marchin-orders",
    "scoop-hivemind.affordable-housing",
    "scoop-hivemind.freshwater",
    "scoop-hivemind.taxes",
    "vtaiwan.uberx",
]
VOTES_HEAD = "timestamp,datetime,comment-id,voter-id,vote\n"


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [row for row in csv.reader(fh) if row]


def same_content(a: Path, b: Path) -> None:
    """Same rows and values; numbers compare as numbers ('1.0' == '1'), text exactly."""

    def norm(cell: str) -> object:
        try:
            return float(cell)
        except ValueError:
            return cell

    ra, rb = rows(a), rows(b)
    assert len(ra) == len(rb), f"{b.name}: {len(rb)} rows, source has {len(ra)}"
    for i, (x, y) in enumerate(zip(ra, rb, strict=True)):
        if x != y:
            assert [norm(c) for c in x] == [norm(c) for c in y], f"{b.name} row {i}: {y[:8]} != {x[:8]}"


def check_round_trip(source: Path, tmp_path: Path, **names: str) -> None:
    """export -> import -> export: the same content as the source; write -> read -> write: the same bytes."""
    export = read_polis_export(source, **names)
    first = write_polis_export(export, tmp_path / "first")
    assert sorted(p.name for p in first) == sorted(
        [
            "comments.csv",
            "votes.csv",
            "summary.csv",
            "comment-groups.csv",
            "participant-votes.csv" if export.generation == "B" else "participants-votes.csv",
        ]
    )
    origin = {
        "comments.csv": names.get("comments", "comments.csv"),
        "participants-votes.csv": names.get("participants_votes", "participants-votes.csv"),
    }
    compared = 0
    for path in first:
        original = source / origin.get(path.name, path.name)
        if original.exists():
            same_content(original, path)
            compared += 1
    assert compared >= 1
    again = read_polis_export(tmp_path / "first")
    second = write_polis_export(again, tmp_path / "second")
    for a, b in zip(first, second, strict=True):
        assert filecmp.cmp(a, b, shallow=False), f"{a.name} changed on the second write"
    pd.testing.assert_frame_equal(again.votes, export.votes)


@pytest.mark.parametrize("name", SMALL + [pytest.param(n, marks=pytest.mark.slow) for n in HEAVY])
def test_opendata_round_trip(opendata: Path, tmp_path: Path, name: str) -> None:
    check_round_trip(opendata / name, tmp_path)


def test_opendata_bytes_survive_unchanged(opendata: Path, tmp_path: Path) -> None:
    """Beyond content: Polis's own files come back byte for byte."""
    source = opendata / "bg2050-volunteers"
    for path in write_polis_export(read_polis_export(source), tmp_path):
        if (source / path.name).exists():
            assert filecmp.cmp(source / path.name, path, shallow=False), path.name


def test_bg2050_tables(opendata: Path) -> None:
    export = read_polis_export(opendata / "bg2050-volunteers")
    st, votes, parts = export.statements, export.votes, export.participants
    assert export.generation == "A" and len(st) == 371 and st.index.name == "statement"
    assert st["is_seed"].dtype == bool and st.loc[2, "is_seed"] and not st.loc[42, "is_seed"]
    assert st.loc[2, "group_informed_consensus"] == pytest.approx(0.6839080459770114, abs=0)
    assert st["timestamp"].min() > 1.7e12  # ms
    assert (st["moderated"].value_counts().to_dict()) == {1: 316, -1: 55}
    assert len(votes) == 14283 and len(export.vote_log) == 14341
    assert list(votes.columns) == ["participant", "statement", "vote", "timestamp"]
    assert votes["vote"].dtype == np.int8 and set(votes["vote"].unique()) == {-1, 0, 1}
    assert not votes.duplicated(["participant", "statement"]).any()
    assert parts["group_id"].value_counts().to_dict() == {0: 100, 1: 8}
    assert parts["xid"].isna().all() and len(parts) == 126
    assert export.summary["voters"] == "126" and export.summary["conversation-description"].count("\n") > 3
    # The matrix and the log's latest votes are the same votes.
    matrix = read_polis_export(opendata / "bg2050-volunteers", participants_votes="participants-votes.csv")
    assert (parts["n_votes"] == votes.groupby("participant").size().reindex(parts.index)).all()
    assert len(matrix.votes) == len(votes)


def test_votes_from_matrix_without_vote_log(opendata: Path) -> None:
    export = read_polis_export(opendata / "american-assembly.bowling-green")
    assert export.vote_log is None and len(export.votes) == 225_524
    assert export.votes["timestamp"].isna().all()
    assert (export.participants["n_votes"].sum()) == 225_524
    counts = export.votes.groupby("participant")["vote"].agg(lambda v: int((v == 1).sum()))
    assert (counts.reindex(export.participants.index) == export.participants["n_agree"]).all()


def test_ccai_raw_and_clean(ccai_polis: Path, tmp_path: Path) -> None:
    raw = read_polis_export(ccai_polis)
    assert len(raw.statements) == 1418 and len(raw.participants) == 1126 and len(raw.votes) == 38_252
    assert raw.statements["moderated"].value_counts().to_dict() == {-1: 655, 0: 488, 1: 275}
    assert raw.participants["xid"].notna().all() and raw.participants["group_id"].isna().sum() == 32
    clean = read_polis_export(ccai_polis, comments="clean_comments.csv", participants_votes="clean_votes.csv")
    assert len(clean.statements) == 275 and len(clean.participants) == 1002
    assert clean.participants["group_id"].value_counts().to_dict() == {0: 619, 1: 383}
    assert set(clean.votes["vote"].unique()) == {-1, 0, 1} and clean.votes["vote"].dtype == np.int8
    assert {"passes", "group_0_consensus"} <= set(clean.statements.columns)
    assert clean.statements["group_0_consensus"].dtype == float
    # clean_votes.csv holds the same votes as the raw matrix on its participants and statements
    merged = clean.votes.merge(raw.votes, on=["participant", "statement"], suffixes=("", "_raw"))
    assert len(merged) == len(clean.votes) and (merged["vote"] == merged["vote_raw"]).all()
    check_round_trip(ccai_polis, tmp_path / "raw")
    check_round_trip(
        ccai_polis, tmp_path / "clean", comments="clean_comments.csv", participants_votes="clean_votes.csv"
    )
    # floats 1.0/-1.0/0.0 are written back as the organisers wrote them
    written = write_polis_export(clean, tmp_path / "clean3")
    assert filecmp.cmp(ccai_polis / "clean_votes.csv", written[2], shallow=False)


def test_id_list(ccai_polis: Path, tmp_path: Path) -> None:
    ids = read_id_list(ccai_polis / "ids-to-toss.csv")
    assert len(ids) == 37 and ids[0] == 643 and len(set(ids)) == 37
    bad = tmp_path / "ids.csv"
    bad.write_text("3\n\n4\nfour\n")
    with pytest.raises(
        PolisFormatError,
        match=r"ids.csv line 4: expected one non-negative integer id per line, "
        r"got 'four'",
    ):
        read_id_list(bad)


def test_generation_b_fixture(tmp_path: Path) -> None:
    folder = FIXTURES / "generation-b"
    export = read_polis_export(folder)
    assert export.generation == "B"
    assert export.statements["timestamp"].min() == 1658827822000.0  # seconds in the file, ms inside
    assert export.vote_log["timestamp"].iloc[0] == 1658933760000.0
    # the re-vote: the later row (by time, though it comes first in the file) wins
    pair = export.vote_log[(export.vote_log.participant == 5) & (export.vote_log.statement == 25)]
    assert list(pair["vote"]) == [-1, 1] and pair["timestamp"].iloc[0] > pair["timestamp"].iloc[1]
    vote = export.votes.set_index(["participant", "statement"])["vote"]
    assert vote[(5, 25)] == -1 and len(export.votes) == len(export.vote_log) - 2
    assert export.participants["group_id"].isna().sum() == 2
    derived = comment_groups_from_votes(export.statements, export.votes, export.participants)
    pd.testing.assert_frame_equal(derived, export.comment_groups)
    g = export.comment_groups.set_index("comment-id")
    assert (g["total-votes"] == g[["group-a-votes", "group-b-votes", "group-c-votes"]].sum(axis=1)).all()
    written = write_polis_export(export, tmp_path)
    assert "participant-votes.csv" in [p.name for p in written]
    for path in written:
        assert filecmp.cmp(folder / path.name, path, shallow=False), path.name


def test_db_sign_flips_to_agree_positive(make_export) -> None:
    folder = make_export(
        {
            "votes.csv": VOTES_HEAD + "1000000000000,,0,1,-1\n1000000000001,,1,1,1\n1000000000002,,0,2,0\n",
            "participants-votes.csv": "participant,group-id,0,1\n1,,-1,1\n2,,0,\n",
        }
    )
    db = read_polis_export(folder, votes_sign="db")
    export = read_polis_export(folder)
    assert list(export.votes["vote"]) == [-1, 1, 0] and list(db.votes["vote"]) == [1, -1, 0]
    assert list(db.vote_log["vote"]) == [1, -1, 0]
    (folder / "votes.csv").unlink()
    assert list(read_polis_export(folder, votes_sign="db").votes["vote"]) == [1, -1, 0]


@pytest.mark.parametrize(
    ("cells", "decimal"),
    [
        (["1", "-1", "", "0", "1"], False),  # the usual spelling: the fast byte-level parse
        (["1.0", "-1.0", "", "0.0", "1.0"], True),  # clean_votes.csv's spelling: the general parse
        (["1", " -1", "", "+1", "0"], False),  # spaces and '+1': the general parse
    ],
)
def test_matrix_spellings_parse_alike(make_export, cells: list[str], decimal: bool) -> None:
    rows = [cells, cells[::-1], ["", "", "", "", ""]]
    text = "participant,group-id,10,11,12,13,14\n" + "".join(
        f"{p},,{','.join(row)}\n" for p, row in zip((5, 3, 9), rows, strict=True)
    )
    export = read_polis_export(make_export({"participants-votes.csv": text}))
    expected = [
        (p, 10 + j, int(float(cell)))
        for p, row in zip((5, 3, 9), rows, strict=True)
        for j, cell in enumerate(row)
        if cell.strip()
    ]
    got = list(export.votes[["participant", "statement", "vote"]].itertuples(index=False, name=None))
    assert got == sorted(expected)
    assert (export.layout.get("vote-text") is not None) == decimal
    db = read_polis_export(make_export({"participants-votes.csv": text}), votes_sign="db")
    assert list(db.votes["vote"]) == [-v for *_, v in sorted(expected)]


def test_revotes_latest_wins_seconds_and_ties(make_export) -> None:
    folder = make_export(
        {
            "votes.csv": VOTES_HEAD
            + "\n".join(
                [
                    "1600000005,,0,1,1",  # the latest for (1, 0), though not last in the file
                    "1600000001,,0,1,-1",
                    "1600000002,,3,1,0",
                    "1600000002,,3,1,1",  # same second: the later row wins
                    "1600000003,,3,2,-1",
                ]
            )
            + "\n"
        }
    )
    export = read_polis_export(folder)
    assert export.generation == "B"  # second timestamps
    assert export.votes.to_dict("list") == {
        "participant": [1, 1, 2],
        "statement": [0, 3, 3],
        "vote": [1, 1, -1],
        "timestamp": [1600000005000.0, 1600000002000.0, 1600000003000.0],
    }
    assert len(export.vote_log) == 5
    assert latest_votes(export.vote_log).equals(export.votes)


def test_unknown_timestamps_fall_back_to_file_order(make_export) -> None:
    folder = make_export({"votes.csv": "comment-id,voter-id,vote\n0,1,1\n0,1,-1\n"})
    export = read_polis_export(folder)
    assert list(export.votes["vote"]) == [-1] and export.votes["timestamp"].isna().all()
    assert list(export.statements.index) == [0] and export.statements.loc[0, "text"] == ""


BAD = [
    (
        {"votes.csv": VOTES_HEAD + "1,,0,1,1\n" * 15 + "1,,0,2,x\n"},
        r"votes.csv line 17, column 'vote': expected -1, 0 or 1, got 'x'",
    ),
    ({"votes.csv": VOTES_HEAD + "1,,0,1,2\n"}, r"votes.csv line 2, column 'vote': expected -1, 0 or 1"),
    (
        {"votes.csv": "timestamp,comment-id,vote\n1,0,1\n"},
        r"votes.csv: missing required column\(s\) 'voter-id'",
    ),
    (
        {"votes.csv": VOTES_HEAD + "1,,0,1,1\n1,,0,1\n"},
        r"votes.csv line 3: expected 5 fields \(as in the header\), found 4",
    ),
    (
        {"votes.csv": VOTES_HEAD + "1,,0,-3,1\n"},
        r"votes.csv line 2, column 'voter-id': expected an integer >= 0",
    ),
    (
        {"votes.csv": VOTES_HEAD + "yesterday,,0,3,1\n"},
        r"votes.csv line 2, column 'timestamp': expected a number or nothing, got 'yesterday'",
    ),
    (
        {"comments.csv": 'comment-id,moderated,comment-body\n0,1,"two\nlines"\n1,1,ok\n2,7,bad\n'},
        r"comments.csv line 5, column 'moderated': expected -1, 0 or 1, got '7'",
    ),
    (
        {"comments.csv": "comment-id,comment-body\n0,a\n0,b\n"},
        r"comments.csv line 3, column 'comment-id': expected each comment-id once, got '0'",
    ),
    (
        {"comments.csv": "comment-id,is-meta,comment-body\n0,maybe,a\n"},
        r"comments.csv line 2, column 'is-meta': expected true or false, got 'maybe'",
    ),
    (
        {"comments.csv": "comment-id,text\n0,a\n"},
        r"comments.csv: missing required column\(s\) 'comment-body'",
    ),
    (
        {"participants-votes.csv": "participant,group-id,0,1\n1,0,1,\n2,0,,yes\n"},
        r"participants-votes.csv line 3, column '1': expected -1, 0 or 1 \(or nothing\), got 'yes'",
    ),
    (
        {"participants-votes.csv": "participant,group-id,0\n1,0,1\n1,1,1\n"},
        r"participants-votes.csv line 3, column 'participant': expected each participant once",
    ),
    (
        {"participants-votes.csv": "participant,group-id,0\n1,a,1\n"},
        r"participants-votes.csv line 2, column 'group-id': expected an integer >= 0 or nothing, got 'a'",
    ),
    ({"participants-votes.csv": ""}, r"participants-votes.csv: the file is empty; expected a header line"),
    (
        {"summary.csv": "topic,x\nvoters,1,2\n", "comments.csv": "comment-id,comment-body\n"},
        r"summary.csv line 2: expected 2 fields",
    ),
    ({"readme.txt": "hello"}, r"no Polis export files found"),
]


@pytest.mark.parametrize(("files", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_files_are_named_precisely(make_export, files: dict[str, str], message: str) -> None:
    folder = make_export(files)
    with pytest.raises(PolisFormatError, match=message) as info:
        read_polis_export(folder)
    assert isinstance(info.value, ValueError) and info.value.path is not None


def test_not_utf8_and_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "comments.csv").write_bytes(b"comment-id,comment-body\n0,caf\xe9\n")
    with pytest.raises(PolisFormatError, match=r"comments.csv: not UTF-8 text"):
        read_polis_export(tmp_path)
    with pytest.raises(PolisFormatError, match="not a directory"):
        read_polis_export(tmp_path / "comments.csv")
    with pytest.raises(PolisFormatError, match="clean.csv: file not found"):
        read_polis_export(tmp_path, comments="clean.csv")


def test_writer_refuses_inconsistent_votes_and_writes_nothing(opendata: Path, tmp_path: Path) -> None:
    export = read_polis_export(opendata / "london.youth.policing")
    broken = replace(export, votes=export.votes.iloc[1:])
    with pytest.raises(ValueError, match="vote_log disagrees"):
        write_polis_export(broken, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())
    # without the log, the latest votes alone are written and read back
    written = write_polis_export(replace(broken, vote_log=None), tmp_path / "out")
    back = read_polis_export(tmp_path / "out")
    assert len(back.votes) == len(broken.votes) and len(written) == 5


def test_export_built_in_code(tmp_path: Path) -> None:
    """A conversation from outside Polis (e.g. ccai's own consultation) gets the standard files."""
    from ccai.formats.polis import PolisExport

    statements = pd.DataFrame(
        {"text": ["Be kind, always", 'Say "no" to harm'], "moderated": [1, 0]},
        index=pd.Index([0, 1], name="statement"),
    )
    votes = pd.DataFrame(
        {
            "participant": [0, 0, 1],
            "statement": [0, 1, 0],
            "vote": np.array([1, -1, 0], np.int8),
            "timestamp": [1.7e12, 1.7e12 + 5, np.nan],
        }
    )
    participants = pd.DataFrame(
        {"group_id": pd.array([0, pd.NA], dtype="Int64")}, index=pd.Index([0, 1], name="participant")
    )
    export = PolisExport(statements, votes, None, participants, {}, None, "A", None)
    write_polis_export(export, tmp_path)
    assert rows(tmp_path / "participants-votes.csv") == [
        ["participant", "group-id", "n-comments", "n-votes", "n-agree", "n-disagree", "0", "1"],
        ["0", "0", "0", "2", "1", "1", "1", "-1"],
        ["1", "", "0", "1", "0", "0", "0", ""],
    ]
    assert rows(tmp_path / "comment-groups.csv")[1] == [
        "0",
        "Be kind, always",
        "1",
        "1",
        "0",
        "0",
        "1",
        "1",
        "0",
        "0",
    ]
    back = read_polis_export(tmp_path)
    assert back.statements.loc[1, "text"] == 'Say "no" to harm' and back.summary["voters"] == "2"
    assert list(back.statements.loc[:, "agrees"]) == [1, 0]


def _serve(folder: Path) -> http.server.ThreadingHTTPServer:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("source", ["bg2050", "generation-b", "ccai"])
def test_red_dwarf_loads_our_export(opendata: Path, ccai_polis: Path, tmp_path: Path, source: str) -> None:
    """red-dwarf's CSV loader (it fetches a directory URL) sees exactly our latest votes."""
    loader_mod = pytest.importorskip("reddwarf.data_loader")
    if source == "bg2050":
        export = read_polis_export(opendata / "bg2050-volunteers")
    elif source == "generation-b":
        export = read_polis_export(FIXTURES / "generation-b")
    else:  # CCAI has no vote log; red-dwarf needs timestamps and is-meta, so we supply both
        export = read_polis_export(ccai_polis)
        export = replace(export, votes=export.votes.assign(timestamp=1.689e12))
    write_polis_export(export, tmp_path, add_meta=True)
    server = _serve(tmp_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loader = loader_mod.Loader(
                directory_url=f"http://127.0.0.1:{server.server_address[1]}/", is_cache_enabled=False
            )
    finally:
        server.shutdown()
    seen = pd.DataFrame(loader.votes_data)[["participant_id", "statement_id", "vote"]]
    seen = seen.sort_values(["participant_id", "statement_id"]).to_numpy()
    assert np.array_equal(seen, export.votes[["participant", "statement", "vote"]].to_numpy())
    assert len(loader.comments_data) == len(export.statements)


def test_plain_int_columns_take_the_fast_path_only_when_plain() -> None:
    from ccai.formats.polis import _plain_ints

    plain = _plain_ints(np.array(["12", "-3", "007", "0"], dtype=object))
    assert plain is not None and plain.dtype == np.int64 and plain.tolist() == [12, -3, 7, 0]
    for odd in ([" 1", "2"], ["1", ""], ["1.0"], ["1\n2"], ["1" * 19], ["+1"], ["١"], []):
        assert _plain_ints(np.array(odd, dtype=object)) is None, odd
