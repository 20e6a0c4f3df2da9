"""The organiser's per-conversation pages: statement table, delete with a typed title, question edits.

On SQLite and PostgreSQL (the ``app`` fixture). Refused forms come back as their page with the field
marked and the draft kept; a delete removes every row of the conversation or, failing, none.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ccai.consultation import organise


def _rows_of(app, cid: int) -> dict[str, int]:
    """Rows per table that belong to conversation ``cid`` (the delete's own walk of the schema)."""
    with app.state.engine.connect() as conn:
        found = {
            table.name: conn.execute(
                sa.select(sa.func.count()).select_from(table).where(clause), {"cid": cid}
            ).scalar_one()
            for table, clause in organise._owned_tables()
        }
        found["conversations"] = conn.execute(
            sa.text("select count(*) from conversations where id = :cid"), {"cid": cid}
        ).scalar_one()
    return found


def _populated(owner, visitor) -> int:
    """A conversation with a screening and a demographic question, seeds, votes, an important flag,
    a participant's statement, a rejection and a duplicate mark."""
    cid = owner.new_conversation("Parks for everyone", unlock_threshold=1)
    owner.post(
        f"/admin/c/{cid}/questions",
        {"kind": "screening", "text": "Are you 18?", "choices": "yes\nno", "eligible_choices": "yes"},
    )
    owner.post(f"/admin/c/{cid}/questions", {"kind": "demographic", "text": "Region?", "choices": "N\nS"})
    owner.seed(cid, "More trees in every park", "Close parks at night", "Free water fountains")
    person = visitor(cid)
    person.page()
    questions = re.findall(r'name="(q\d+)"', person.page())
    assert person.post("/answers", {questions[0]: "yes", questions[1]: "N"}).status_code == 303
    assert person.vote(1, statement=0, important=True).status_code == 303
    assert person.vote(-1, statement=1).status_code == 303
    assert person.vote(0, statement=1).status_code == 303  # a re-vote: the pass counts, not the disagree
    assert person.write("Benches that face the sun").status_code == 303
    assert (
        owner.post(f"/admin/c/{cid}/statements/1", {"op": "reject", "reason": "off topic"}).status_code == 303
    )
    assert (
        owner.post(f"/admin/c/{cid}/statements/2", {"op": "duplicate", "duplicate_of": "0"}).status_code
        == 303
    )
    return cid


def test_statement_table_counts_filters_and_sorts(app, owner, moderator, visitor):
    cid = _populated(owner, visitor)
    page = moderator.client.get(f"/admin/c/{cid}/statements")
    assert page.status_code == 200
    assert "Statements: 4 (1 pending, 2 accepted, 1 rejected)" in page.text
    row0 = page.text.split('id="s-0"')[1].split("</tr>")[0]
    assert [int(n) for n in re.findall(r"<td>(\d+)</td>", row0)] == [0, 1, 0, 0, 1]  # agree, dis, pass, imp
    row1 = page.text.split('id="s-1"')[1].split("</tr>")[0]
    assert (
        "rejected" in row1
        and "off topic" in row1
        and re.findall(r"<td>(\d+)</td>", row1) == ["1", "0", "0", "1", "0"]
    )
    assert "participant 0" in page.text.split('id="s-3"')[1].split("</tr>")[0]
    assert "Current votes: 3 " in page.text  # on 0 (agree), 1 (the re-vote counted once), 3 (the author)
    assert "duplicate of #0" in page.text.split('id="s-2"')[1].split("</tr>")[0]
    rejected = moderator.client.get(f"/admin/c/{cid}/statements", params={"status": "rejected"}).text
    assert 'id="s-1"' in rejected and 'id="s-0"' not in rejected and "1 statement(s) match" in rejected
    found = moderator.client.get(f"/admin/c/{cid}/statements", params={"q": "PARK"}).text
    assert re.findall(r'id="s-(\d+)"', found) == ["0", "1"]
    assert 'id="s-' not in moderator.client.get(f"/admin/c/{cid}/statements", params={"q": "50%_"}).text
    newest = moderator.client.get(f"/admin/c/{cid}/statements", params={"sort": "newest"}).text
    assert re.findall(r'id="s-(\d+)"', newest) == ["3", "2", "1", "0"]
    important = moderator.client.get(f"/admin/c/{cid}/statements", params={"sort": "important"}).text
    assert re.findall(r'id="s-(\d+)"', important)[0] == "0"
    bad = moderator.client.get(f"/admin/c/{cid}/statements", params={"status": "spam", "q": "kept"})
    assert bad.status_code == 400 and "Status: “spam” is not one of the options" in bad.text
    assert 'id="f-status" name="status" aria-invalid="true"' in bad.text and 'value="kept"' in bad.text
    german = moderator.client.get(f"/admin/c/{cid}/statements", params={"sort": "x", "lang": "de"})
    assert "Reihenfolge: „x“ ist keine der Möglichkeiten" in german.text
    moderator.client.get("/lang/en")  # ?lang=de left a cookie on the session's shared client
    assert TestClient(app).get(f"/admin/c/{cid}/statements", follow_redirects=False).status_code == 303


def test_statement_table_pages(app, owner):
    cid = owner.new_conversation("Many statements")
    owner.seed(cid, *(f"Statement number {i}" for i in range(1, 8)))
    with app.state.sessions() as db:
        conversation = db.get(organise.Conversation, cid)
        table = organise.statement_table(db, conversation, size=3, page=3)
        assert (table.page, table.pages, [r.number for r in table.rows]) == (3, 3, [6])
        assert organise.statement_table(db, conversation, size=3, page=99).page == 3


def test_delete_needs_the_typed_title_and_removes_everything(app, owner, moderator, visitor, new_staff):
    cid = _populated(owner, visitor)
    keep = _populated(owner, visitor)
    before = _rows_of(app, cid)
    assert before["votes"] >= 3 and before["answers"] == 2 and before["participants"] == 1
    assert moderator.client.get(f"/admin/c/{cid}/delete").status_code == 403
    assert moderator.post(f"/admin/c/{cid}/delete", {"confirm": "Parks for everyone"}).status_code == 403
    page = owner.client.get(f"/admin/c/{cid}/delete")
    assert page.status_code == 200 and "Statements: 4," in page.text and "Votes cast: 4 " in page.text
    wrong = owner.post(f"/admin/c/{cid}/delete", {"confirm": "parks for every"})
    assert wrong.status_code == 400 and "does not match" in wrong.text
    assert 'value="parks for every"' in wrong.text and 'aria-invalid="true"' in wrong.text
    assert _rows_of(app, cid) == before
    forged = owner.client.post(
        f"/admin/c/{cid}/delete", data={"confirm": "Parks for everyone", "csrf_token": "x"}
    )
    assert forged.status_code == 403 and _rows_of(app, cid) == before
    done = owner.post(f"/admin/c/{cid}/delete", {"confirm": "  Parks for everyone "})
    assert done.status_code == 303 and done.headers["location"] == "/admin?done=deleted"
    assert set(_rows_of(app, cid).values()) == {0}
    assert sum(_rows_of(app, keep).values()) > 0 and _rows_of(app, keep)["votes"] == before["votes"]
    assert "The conversation was deleted." in owner.client.get("/admin?done=deleted").text
    assert TestClient(app).get(f"/c/{cid}").status_code == 404
    assert owner.post(f"/admin/c/{cid}/delete", {"confirm": "Parks for everyone"}).status_code == 404


def test_a_failed_delete_leaves_everything(app, owner, visitor, monkeypatch):
    """A statement failing halfway (here: the participants' DELETE) rolls back the deletes before it."""
    cid = _populated(owner, visitor)
    before = _rows_of(app, cid)
    real = organise._owned_tables

    def failing():
        tables = real()
        names = [t.name for t, _ in tables]
        assert names.index("votes") < names.index("participants")  # votes go before it fails
        return [(t, sa.text("no_such_column = 1") if t.name == "participants" else c) for t, c in tables]

    monkeypatch.setattr(organise, "_owned_tables", failing)
    with pytest.raises(sa.exc.DBAPIError):
        owner.post(f"/admin/c/{cid}/delete", {"confirm": "Parks for everyone"})
    monkeypatch.undo()
    assert _rows_of(app, cid) == before


def test_reused_id_is_routed_afresh(app, owner):
    """SQLite hands a deleted conversation's id to the next one; the per-worker routing state and the
    fast path's snapshot must not serve the old conversation's statements under it."""
    client = TestClient(app)
    old = owner.new_conversation("Old one", is_open=True)
    owner.seed(old, "Old statement one", "Old statement two")
    token = client.post(f"/api/v1/conversations/{old}/participants").json()["token"]
    first = client.get(f"/api/v1/conversations/{old}/next", headers={"Authorization": f"Bearer {token}"})
    assert first.json()["statement"]["text"].startswith("Old statement")
    assert owner.post(f"/admin/c/{old}/delete", {"confirm": "Old one"}).status_code == 303
    new = owner.new_conversation("New one", is_open=True)
    if app.state.engine.dialect.name == "sqlite":
        assert new == old  # the id is reused (PostgreSQL's sequence never does)
    owner.seed(new, "New statement")
    token = client.post(f"/api/v1/conversations/{new}/participants").json()["token"]
    got = client.get(f"/api/v1/conversations/{new}/next", headers={"Authorization": f"Bearer {token}"})
    assert got.json()["statement"]["text"] == "New statement" and got.json()["remaining"] == 1


def test_edit_and_reorder_questions(app, owner, moderator, visitor, count):
    cid = _populated(owner, visitor)
    with app.state.sessions() as db:
        qs = organise.questions(db, cid)
    screening, region = qs[0].id, qs[1].id
    page = owner.client.get(f"/admin/c/{cid}")
    assert f'href="/admin/c/{cid}/questions/{screening}"' in page.text
    assert moderator.client.get(f"/admin/c/{cid}/questions/{screening}").status_code == 403
    edit = owner.client.get(f"/admin/c/{cid}/questions/{screening}")
    assert edit.status_code == 200 and "Are you 18?" in edit.text
    # 'no' was never chosen, 'yes' was: 'yes' must stay
    lost = owner.post(
        f"/admin/c/{cid}/questions/{screening}",
        {"text": "Are you an adult?", "choices": "no\nmaybe", "eligible_choices": "no"},
    )
    assert lost.status_code == 409 and "yes was already chosen" in lost.text
    assert 'value="Are you an adult?"' in lost.text and "no\nmaybe</textarea>" in lost.text
    assert 'id="choices" name="choices" rows="4" required aria-invalid="true"' in lost.text
    admitting = owner.post(
        f"/admin/c/{cid}/questions/{screening}",
        {"text": "Are you an adult?", "choices": "yes\nno", "eligible_choices": "perhaps"},
    )
    assert admitting.status_code == 400 and 'id="eligible_choices"' in admitting.text
    empty = owner.post(f"/admin/c/{cid}/questions/{screening}?lang=de", {"text": " ", "choices": "yes\nno"})
    assert empty.status_code == 400 and "Fragetext" in empty.text
    owner.client.get("/lang/en")  # (the shared client keeps English for the other tests)
    ok = owner.post(
        f"/admin/c/{cid}/questions/{screening}",
        {"text": "Are you an adult?", "choices": "yes\nno\nrather not say", "eligible_choices": "yes"},
    )
    assert ok.status_code == 303
    assert count("questions", id=screening, text="Are you an adult?") == 1
    elsewhere = owner.new_conversation("Another")
    assert owner.client.get(f"/admin/c/{elsewhere}/questions/{screening}").status_code == 404
    # reorder: the demographic question first, then back
    assert owner.post(f"/admin/c/{cid}/questions/{region}/move", {"direction": "up"}).status_code == 303
    with app.state.sessions() as db:
        assert [q.id for q in organise.questions(db, cid)] == [region, screening]
    text = owner.client.get(f"/admin/c/{cid}").text
    assert text.index("Region?") < text.index("Are you an adult?")
    assert owner.post(f"/admin/c/{cid}/questions/{region}/move", {"direction": "up"}).status_code == 303
    bad = owner.post(f"/admin/c/{cid}/questions/{region}/move", {"direction": "sideways"})
    assert bad.status_code == 400 and "“sideways” is not one of the options" in bad.text
    assert owner.post(f"/admin/c/{cid}/questions/{region}/move", {"direction": "down"}).status_code == 303
    with app.state.sessions() as db:
        assert [q.id for q in organise.questions(db, cid)] == [screening, region]
        assert [q.position for q in organise.questions(db, cid)] == [0, 1]


def test_add_question_refusal_keeps_the_draft(app, owner, count):
    cid = owner.new_conversation("Questions with mistakes")
    form = {
        "kind": "screening",
        "text": "Do you live here?",
        "choices": "yes\nno",
        "eligible_choices": "maybe",
    }
    refused = owner.post(f"/admin/c/{cid}/questions", form)
    assert refused.status_code == 400 and "Admitting answers:" in refused.text
    assert 'name="eligible_choices" rows="2" aria-invalid="true"' in refused.text
    assert 'value="Do you live here?"' in refused.text and "yes\nno</textarea>" in refused.text
    assert '<option value="screening" selected>' in refused.text
    one = owner.post(
        f"/admin/c/{cid}/questions?lang=de", form | {"choices": "yes", "eligible_choices": "yes"}
    )
    assert one.status_code == 400 and "Antwortmöglichkeiten: mindestens zwei" in one.text
    owner.client.get("/lang/en")  # (the shared client keeps English for the other tests)
    kind = owner.post(f"/admin/c/{cid}/questions", form | {"kind": "poll"})
    assert kind.status_code == 400 and 'id="kind" name="kind" aria-invalid="true"' in kind.text
    assert count("questions", conversation_id=cid) == 0
    assert owner.post(f"/admin/c/{cid}/questions", form | {"eligible_choices": "yes"}).status_code == 303
    assert count("questions", conversation_id=cid) == 1
