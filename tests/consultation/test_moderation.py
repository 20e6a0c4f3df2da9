"""Owners and moderators: login, roles, configuration, seeds (single and CSV), the moderation queue."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

from ccai.consultation.store import Statement


def _statement(app, cid: int, number: int) -> Statement:
    with app.state.sessions() as db:
        return db.scalar(
            sa.select(Statement).where(Statement.conversation_id == cid, Statement.number == number)
        )


def test_login_required_and_wrong_password(app, owner):
    anonymous = TestClient(app)
    response = anonymous.get("/admin", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    page = anonymous.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = anonymous.post(
        "/login", data={"email": owner.email, "password": "wrong password", "csrf_token": token}
    )
    assert response.status_code == 401 and "Wrong email or password" in response.text
    assert owner.client.get("/admin").status_code == 200


def test_logout_ends_the_session(new_staff):
    staff = new_staff("moderator")
    assert staff.post("/logout").status_code == 303
    assert staff.client.get("/admin", follow_redirects=False).status_code == 303
    assert staff.client.post("/logout", data={"csrf_token": "x"}).status_code == 401


def test_moderator_cannot_create_or_configure(owner, moderator):
    refused = moderator.post("/admin/conversations", {"topic": "Not mine to create"})
    assert refused.status_code == 403
    cid = owner.new_conversation()
    assert moderator.post(f"/admin/c/{cid}/config", {"topic": "Renamed"}).status_code == 403
    assert moderator.seed(cid, "Moderators may seed") == [0]


def test_seed_csv_reports_accepted_and_refused(app, moderator, owner, count):
    cid = owner.new_conversation(max_length=50)
    csv = (
        "comment_text,notes\nAI should be honest,a\n,empty\nAI should be honest,dup\n"
        f'{"x" * 51},long\n"AI should respect privacy, always",b\n'
    ).encode()
    response = moderator.post(f"/admin/c/{cid}/seeds.csv", files={"file": ("seeds.csv", csv, "text/csv")})
    assert response.status_code == 200
    assert "2 accepted, 3 refused" in response.text
    assert re.search(r"<td>3</td><td>The statement is empty.</td>", response.text)
    assert re.search(r"<td>4</td><td>This statement already exists", response.text)
    assert "limit is 50" in response.text
    assert count("statements", conversation_id=cid, is_seed=True, moderation=1) == 2


def test_seed_csv_without_comment_text_column(app, moderator, owner, count):
    cid = owner.new_conversation()
    response = moderator.post(
        f"/admin/c/{cid}/seeds.csv", files={"file": ("s.csv", b"text\nhello\n", "text/csv")}
    )
    assert response.status_code == 400 and "comment_text" in response.text
    bad = moderator.post(
        f"/admin/c/{cid}/seeds.csv", files={"file": ("s.csv", b"\xff\xfe\x00bad", "text/csv")}
    )
    assert bad.status_code == 400 and "UTF-8" in bad.text
    assert count("statements", conversation_id=cid) == 0


def test_moderation_queue_rewrite_keeps_original(app, owner, moderator, visitor):
    cid = owner.new_conversation(unlock_threshold=0, strict_moderation=True)
    visitor(cid).write("Never sexually harass.")
    queue = moderator.client.get(f"/admin/c/{cid}/moderate").text
    assert "Never sexually harass." in queue
    rewritten = "The AI should never sexually harass anyone."
    response = moderator.post(f"/admin/c/{cid}/statements/0", {"op": "rewrite", "text": rewritten})
    assert response.status_code == 303
    assert moderator.post(f"/admin/c/{cid}/statements/0", {"op": "accept"}).status_code == 303
    statement = _statement(app, cid, 0)
    assert (statement.text, statement.original_text, statement.moderation) == (
        rewritten,
        "Never sexually harass.",
        1,
    )
    assert statement.rewritten_by is not None and statement.moderated_by == statement.rewritten_by
    accepted = moderator.client.get(f"/admin/c/{cid}/moderate", params={"tab": "accepted"}).text
    assert "rewritten from: “Never sexually harass.”" in accepted
    second = visitor(cid)
    assert rewritten in second.page()


def test_reject_needs_reason_and_hides_statement(app, owner, moderator, visitor, count):
    cid = owner.new_conversation(unlock_threshold=0)
    visitor(cid).write("Buy cheap watches at spam dot com")
    no_reason = moderator.post(f"/admin/c/{cid}/statements/0", {"op": "reject"})
    assert no_reason.status_code == 400 and "reason" in no_reason.text
    assert (
        moderator.post(f"/admin/c/{cid}/statements/0", {"op": "reject", "reason": "spam"}).status_code == 303
    )
    assert _statement(app, cid, 0).mod_reason == "spam"
    assert visitor(cid).current() is None


def test_duplicate_and_meta_marking(app, owner, moderator, visitor):
    cid = owner.new_conversation(unlock_threshold=0)
    owner.seed(cid, "AI should not lie")
    visitor(cid).write("The AI must never lie to people")
    assert (
        moderator.post(f"/admin/c/{cid}/statements/1", {"op": "duplicate", "duplicate_of": "0"}).status_code
        == 303
    )
    assert _statement(app, cid, 1).duplicate_of == _statement(app, cid, 0).id
    fresh = visitor(cid)
    assert fresh.vote_all() == 1  # the duplicate is not routed
    self_dup = moderator.post(f"/admin/c/{cid}/statements/0", {"op": "duplicate", "duplicate_of": "0"})
    assert self_dup.status_code == 400
    assert moderator.post(f"/admin/c/{cid}/statements/0", {"op": "meta"}).status_code == 303
    assert _statement(app, cid, 0).is_meta


def test_owner_configures_everything(app, owner):
    cid = owner.new_conversation(unlock_threshold=5, max_length=100, seed_first=True, strict_moderation=True)
    page = owner.client.get(f"/admin/c/{cid}").text
    assert 'name="seed_first" checked' in page and 'value="100"' in page
    refused = owner.post(f"/admin/c/{cid}/config", {"topic": "x", "max_length": "5"})
    assert refused.status_code == 422 and "max_length" in refused.text


def test_export_zip_from_admin(app, owner, visitor):
    import io
    import zipfile

    cid = owner.new_conversation()
    owner.seed(cid, "One", "Two")
    visitor(cid).vote_all(1)
    response = owner.client.get(f"/admin/c/{cid}/export.zip")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    names = set(zipfile.ZipFile(io.BytesIO(response.content)).namelist())
    assert names == {
        "comments.csv",
        "votes.csv",
        "participants-votes.csv",
        "summary.csv",
        "comment-groups.csv",
        "participant-answers.csv",  # what Polis lacks: screening/demographic answers, "important" flags
        "important-votes.csv",
    }
    assert TestClient(app).get(f"/admin/c/{cid}/export.zip", follow_redirects=False).status_code == 303


def test_queue_is_paginated(owner, moderator):
    cid = owner.new_conversation()
    csv = "comment_text\n" + "".join(f"Seeded statement number {i}\n" for i in range(60))
    moderator.post(f"/admin/c/{cid}/seeds.csv", files={"file": ("s.csv", csv.encode(), "text/csv")})
    first = moderator.client.get(f"/admin/c/{cid}/moderate", params={"tab": "accepted"}).text
    assert "60 accepted · page 1 of 2" in first and first.count('class="card"') == 50 and "next →" in first
    second = moderator.client.get(f"/admin/c/{cid}/moderate", params={"tab": "accepted", "page": 1}).text
    assert second.count('class="card"') == 10 and "Seeded statement number 59" in second
    assert moderator.client.get(f"/admin/c/{cid}/moderate", params={"page": -1}).status_code == 422
