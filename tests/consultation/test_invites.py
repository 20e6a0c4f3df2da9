"""Web invites: an owner makes a single-use, expiring link; the invited person picks their password.

On SQLite and PostgreSQL. The link works once, not after its expiry or withdrawal, and a refused email or
password keeps the invite usable and the typed email.
"""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa
from fastapi.testclient import TestClient

from ccai.consultation import accounts
from tests.consultation.conftest import csrf_of


def _invite(owner, role: str = "moderator", days: str = "7", note: str = "") -> str:
    made = owner.post("/admin/users/invites", {"role": role, "days": days, "note": note})
    assert made.status_code == 201, made.text
    return re.search(r'id="new-link" readonly value="[^"]*/invite/([^"]+)"', made.text).group(1)


def _accept(app, token: str, email: str, password: str, client: TestClient | None = None):
    client = client or TestClient(app)
    page = client.get(f"/invite/{token}")
    if page.status_code != 200:
        return page
    data = {"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    return client.post(f"/invite/{token}", data=data, follow_redirects=False)


def test_invite_once_and_log_in(app, owner, count):
    email = f"invited-{uuid.uuid4().hex[:6]}@example.org"
    token = _invite(owner, note="Alex, moderator")
    page = owner.client.get("/admin/users")
    assert "Alex, moderator" in page.text  # listed as open
    with app.state.engine.connect() as conn:  # only the hash is stored
        assert (
            conn.execute(sa.text("select count(*) from invites where token_hash = :t"), {"t": token}).scalar()
            == 0
        )
    client = TestClient(app)
    weak = _accept(app, token, email, "short", client)
    assert weak.status_code == 400 and f'value="{email}"' in weak.text
    assert 'id="password"' in weak.text and 'aria-invalid="true"' in weak.text.split('id="password"')[1][:400]
    bad = _accept(app, token, "not-an-email", "long enough pass", client)
    assert bad.status_code == 400 and "not an email address" in bad.text
    taken = _accept(app, token, owner.email, "long enough pass", client)
    assert taken.status_code == 409 and "exists already" in taken.text
    done = _accept(app, token, email, "long enough pass", client)
    assert done.status_code == 303 and done.headers["location"] == "/admin"
    assert client.get("/admin").status_code == 200  # logged in as the new moderator
    assert client.get("/admin/users").status_code == 403  # a moderator, not an owner
    assert count("users", email=email, role="moderator") == 1
    again = _accept(app, token, "second-" + email, "long enough pass")
    assert again.status_code == 410 and "used already" in again.text
    assert count("users", email="second-" + email) == 0
    forged = TestClient(app).post(
        f"/invite/{_invite(owner)}",
        data={"email": "x@example.org", "password": "long enough", "csrf_token": "x"},
    )
    assert forged.status_code == 403


def test_expired_withdrawn_unknown_and_refused(app, owner, moderator):
    token = _invite(owner, role="owner", days="1")
    with app.state.engine.begin() as conn:
        conn.execute(
            sa.text("update invites set expires_ms = 1 where token_hash = :h"),
            {"h": accounts.token_digest(token)},
        )
    expired = TestClient(app).get(f"/invite/{token}")
    assert expired.status_code == 410 and "expired" in expired.text
    assert _accept(app, "nonsense", "a@example.org", "long enough pass").status_code == 404
    withdrawn = _invite(owner, note="to withdraw")
    with app.state.sessions() as db:
        invite_id = db.scalar(
            sa.select(accounts.Invite.id).where(
                accounts.Invite.token_hash == accounts.token_digest(withdrawn)
            )
        )
    assert owner.post(f"/admin/users/invites/{invite_id}/revoke").status_code == 303
    assert TestClient(app).get(f"/invite/{withdrawn}").status_code == 404
    assert owner.post(f"/admin/users/invites/{invite_id}/revoke").status_code == 404
    # only owners invite; bad durations and roles name their field and keep the draft
    assert moderator.post("/admin/users/invites", {"role": "owner", "days": "7"}).status_code == 403
    days = owner.post("/admin/users/invites", {"role": "moderator", "days": "365", "note": "kept note"})
    assert (
        days.status_code == 400 and "Valid for: choose one" in days.text and 'value="kept note"' in days.text
    )
    assert 'id="invite-days" name="days" aria-invalid="true"' in days.text
    role = owner.post("/admin/users/invites", {"role": "admin", "days": "7"})
    assert role.status_code == 400 and 'id="invite-role" name="role" aria-invalid="true"' in role.text
    german = owner.post("/admin/users/invites?lang=de", {"role": "moderator", "days": "0"})
    assert "Gültig für: bitte eine" in german.text
    owner.client.get("/lang/en")  # (the shared client keeps English for the other tests)


def test_one_invite_one_account(app, owner):
    """Two acceptances of one link through the service, in two sessions: the second is refused. (The claim
    is a conditional UPDATE, so two at once cannot both pass either: on PostgreSQL the second waits for the
    first's row lock and then matches nothing; SQLite has one writer at a time.)"""
    token = _invite(owner)
    with app.state.sessions() as first, app.state.sessions() as second:
        accounts.accept_invite(first, token, f"a-{uuid.uuid4().hex[:6]}@example.org", "long enough pass")
        first.commit()
        try:
            accounts.accept_invite(second, token, f"b-{uuid.uuid4().hex[:6]}@example.org", "long enough pass")
            second.commit()
            won_twice = True
        except accounts.RuleError as exc:
            second.rollback()
            won_twice, code = False, exc.code
    assert not won_twice and code == "invite_used"


def test_moderator_of_one_conversation(app, owner, visitor, count):
    """A member moderates the conversations granted to them and sees no other admin page."""
    from tests.consultation.conftest import login, make_user

    mine = owner.new_conversation("Theirs to moderate")
    other = owner.new_conversation("Not theirs")
    owner.seed(mine, "A seed here")
    owner.seed(other, "A seed there")
    member = login(app, make_user(app, "member"))
    assert member.client.get(f"/admin/c/{mine}").status_code == 403  # no grant yet
    with app.state.sessions() as db:
        uid = db.scalar(sa.select(accounts.User.id).where(accounts.User.email == member.email))
    page = owner.client.get(f"/admin/c/{mine}")
    assert f'<option value="{uid}">{member.email}</option>' in page.text
    assert owner.post(f"/admin/c/{mine}/moderators", {"user_id": str(uid)}).status_code == 303
    listing = member.client.get("/admin")
    assert (
        listing.status_code == 200
        and "Theirs to moderate" in listing.text
        and "Not theirs" not in listing.text
    )
    for path in (f"/admin/c/{mine}", f"/admin/c/{mine}/moderate", f"/admin/c/{mine}/statements"):
        assert member.client.get(path).status_code == 200, path
    assert member.post(f"/admin/c/{mine}/statements/0", {"op": "reject", "reason": "test"}).status_code == 303
    for path in (
        f"/admin/c/{other}",
        f"/admin/c/{other}/moderate",
        f"/admin/c/{other}/export.zip",
        f"/admin/c/{other}/judging",
        "/admin/users",
        "/admin/review",
    ):
        assert member.client.get(path).status_code == 403, path
    refused = member.post(f"/admin/c/{other}/statements/0", {"op": "reject", "reason": "test"})
    assert refused.status_code == 403 and "not this one" in refused.text
    assert member.post("/admin/conversations", {"topic": "Mine now"}).status_code == 403
    assert member.client.get(f"/admin/c/{mine}/delete").status_code == 403  # owners only
    # granting is for members only; removing the grant closes the door again
    with app.state.sessions() as db:
        moderator = db.scalar(sa.select(accounts.User).where(accounts.User.email == owner.email))
        try:
            accounts.grant(db, moderator, mine)
            raise AssertionError("an owner got a per-conversation grant")
        except accounts.RuleError as exc:
            assert exc.code == "not_member"
    assert owner.post(f"/admin/c/{mine}/moderators/{uid}/remove").status_code == 303
    assert member.client.get(f"/admin/c/{mine}").status_code == 403
    assert count("conversation_roles", user_id=uid) == 0


def test_invite_to_moderate_one_conversation(app, owner, count):
    cid = owner.new_conversation("Invite-only moderation")
    missing = owner.post("/admin/users/invites", {"role": "member", "days": "7", "note": "no conversation"})
    assert (
        missing.status_code == 400
        and 'id="invite-conversation" name="conversation" aria-invalid="true"' in missing.text
    )
    assert 'value="no conversation"' in missing.text
    made = owner.post("/admin/users/invites", {"role": "member", "days": "7", "conversation": str(cid)})
    assert made.status_code == 201 and "(Invite-only moderation)" in made.text
    token = re.search(r'id="new-link" readonly value="[^"]*/invite/([^"]+)"', made.text).group(1)
    client = TestClient(app)
    email = f"one-{uuid.uuid4().hex[:6]}@example.org"
    assert _accept(app, token, email, "long enough pass", client).status_code == 303
    assert "Invite-only moderation" in client.get("/admin").text
    assert client.get(f"/admin/c/{cid}/moderate").status_code == 200
    assert count("users", email=email, role="member") == 1
    # deleting the conversation takes its grants with it
    assert owner.post(f"/admin/c/{cid}/delete", {"confirm": "Invite-only moderation"}).status_code == 303
    assert count("conversation_roles", conversation_id=cid) == 0
    assert (
        client.get("/admin").status_code == 200 and "Invite-only moderation" not in client.get("/admin").text
    )
