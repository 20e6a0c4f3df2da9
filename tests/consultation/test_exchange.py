"""Polis exports in and out: real CCAI and openData exports round-trip with identical content; CLI."""

from __future__ import annotations

import zipfile

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ccai.cli import app as cli
from ccai.consultation import exchange, store
from ccai.formats.polis import read_polis_export
from tests.consultation.conftest import report_text

LOG_COLUMNS = ["participant", "statement", "vote", "timestamp"]


def _same(left: pd.DataFrame, right: pd.DataFrame, columns=None) -> None:
    columns = [c for c in (columns or left.columns) if c in left.columns]
    assert set(columns) <= set(right.columns), (
        f"missing after round trip: {set(columns) - set(right.columns)}"
    )
    pd.testing.assert_frame_equal(left[columns].sort_index(), right[columns].sort_index(), check_dtype=False)


def _roundtrip(database_url: str, source, tmp_path):
    engine = store.make_engine(database_url)
    store.migrate(engine)
    original = read_polis_export(source)
    with Session(engine) as db:
        conversation = exchange.import_export(db, original)
        db.commit()
        archive = exchange.export_zip(db, conversation, tmp_path / "export.zip")
    engine.dispose()
    zipfile.ZipFile(archive).extractall(tmp_path / "out")
    return original, read_polis_export(tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ccai_polis", "polis-opendata/bg2050-volunteers"])
def test_import_then_export_gives_identical_content(database_url, shared_data, tmp_path, name):
    original, again = _roundtrip(database_url, shared_data / name, tmp_path)
    # the zip guards formula-like texts with an apostrophe (CSV injection); the import takes it off again
    escaped = again.statements["text"]
    assert not escaped.astype(str).str.match(r"^[=+\-@]").any()
    again.statements["text"] = escaped.map(exchange.unescape_cell)
    _same(original.statements, again.statements)
    _same(original.participants, again.participants)
    pd.testing.assert_frame_equal(
        original.votes.reset_index(drop=True), again.votes.reset_index(drop=True), check_dtype=False
    )
    if original.vote_log is not None:  # the full log, re-votes included, row for row
        pd.testing.assert_frame_equal(
            original.vote_log[LOG_COLUMNS].reset_index(drop=True),
            again.vote_log[LOG_COLUMNS].reset_index(drop=True),
            check_dtype=False,
        )
    if original.summary:
        assert again.summary == original.summary
    assert again.generation == original.generation


def test_small_export_round_trip_and_report(app, owner, visitor, tmp_path):
    """A live conversation exports, imports into a new conversation and exports again unchanged."""
    cid = owner.new_conversation(unlock_threshold=0)
    owner.seed(cid, "Alpha", "Beta")
    for value in (1, -1, 0):
        visitor(cid).vote_all(value)
    visitor(cid).write("Gamma from a participant")
    with Session(app.state.engine) as db:
        first = exchange.to_export(db, db.get(store.Conversation, cid))
        copy = exchange.import_export(db, first)
        db.commit()
        second = exchange.to_export(db, copy)
    _same(first.statements, second.statements, ["text", "author", "moderated", "is_seed", "timestamp"])
    pd.testing.assert_frame_equal(first.votes, second.votes, check_dtype=False)
    assert list(first.votes["vote"].value_counts().sort_index()) == [
        2,
        2,
        3,
    ]  # -1, 0, +1 (with the author's own agree)


def test_cli_users_import_export(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("CCAI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()

    def text(result) -> str:  # rich wraps long lines
        return " ".join(result.output.split())

    created = runner.invoke(
        cli, ["users", "create", "chair@example.org", "--role", "owner", "--password", "long enough"]
    )
    assert created.exit_code == 0, text(created)
    again = runner.invoke(cli, ["users", "create", "chair@example.org", "--password", "long enough"])
    assert again.exit_code == 2 and "already exists" in text(again)
    weak = runner.invoke(cli, ["users", "create", "x@example.org", "--password", "short"])
    assert weak.exit_code == 2 and "8 characters" in text(weak)
    imported = runner.invoke(cli, ["import-polis", str(shared_data / "polis-opendata" / "bg2050-volunteers")])
    assert imported.exit_code == 0 and "imported conversation 1" in text(imported)
    assert "(“Together, we'll build the BG of 2050.”, private)" in text(imported)
    missing = runner.invoke(cli, ["import-polis", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "not a directory" in text(missing)
    out = tmp_path / "bg.zip"
    exported = runner.invoke(cli, ["export-polis", "1", str(out)])
    assert exported.exit_code == 0 and zipfile.is_zipfile(out)
    unknown = runner.invoke(cli, ["export-polis", "42", str(out)])
    assert unknown.exit_code == 2 and "No conversation with id 42" in text(unknown)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'consultation.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("select count(*) from votes").scalar() == 14341
        row = conn.exec_driver_sql("select topic, is_private, is_open from conversations").one()
        assert tuple(row) == ("Together, we'll build the BG of 2050.", 1, 0)  # unlisted, closed
    engine.dispose()


def test_report_of_an_imported_conversation(app, shared_data):
    """The live report on real data (bg2050-volunteers): groups, GAC ranking, map, timeline; in German too."""
    from fastapi.testclient import TestClient

    export = read_polis_export(shared_data / "polis-opendata" / "bg2050-volunteers")
    with Session(app.state.engine) as db:
        cid = exchange.import_export(db, export).id
        db.commit()
    client = TestClient(app)
    page = report_text(app, client, cid)
    assert "126 participants" in page and "Opinion groups" in page
    assert page.count('class="group"') >= 2 and page.count("<circle") >= 100
    assert "Participation over time" in page and "Group-aware consensus (GAC)" in page
    german = report_text(app, client, cid, lang="de")
    assert "Meinungsgruppen" in german and "Gruppenübergreifender Konsens" in german
    closed = TestClient(app).get(f"/c/{cid}").text  # (the first client now has German in a cookie)
    assert "This conversation is closed" in closed and 'name="vote"' not in closed


def test_import_title_and_privacy(app, shared_data, tmp_path):
    """An import is private (off the public list) and titled by summary.csv, else its README's heading,
    else a plain phrase with its size; never the folder's name (the CCAI export was listed as ccai_polis)."""
    from fastapi.testclient import TestClient

    ccai = shared_data / "ccai_polis"
    bg = shared_data / "polis-opendata" / "bg2050-volunteers"
    export = read_polis_export(bg)
    assert exchange.import_title(export, bg) == "Together, we'll build the BG of 2050."
    bare = read_polis_export(bg)
    bare.summary = {}
    assert exchange.import_title(bare, bg) == f"Imported Polis export ({len(export.statements)} statements)"
    (tmp_path / "README.md").write_text("Intro line\n\n#   A study of parks  \n")
    assert exchange.import_title(bare, tmp_path) == "A study of parks"
    if (ccai / "README.md").is_file():  # the CCAI export has no summary.csv
        assert exchange.import_title(bare, ccai).startswith("CCAI public input")
    with Session(app.state.engine) as db:
        conversation = exchange.import_export(db, export, topic=exchange.import_title(export, bg))
        cid = conversation.id
        assert conversation.is_private and not conversation.is_open
        db.commit()
    client = TestClient(app)
    assert f'href="/c/{cid}"' not in client.get("/").text  # unlisted
    assert client.get(f"/c/{cid}").status_code == 200  # reachable by its link
