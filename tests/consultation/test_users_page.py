"""The owners' users page (/admin/users): list, role change, password reset, delete, with its refusals."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ccai.consultation import accounts
from ccai.consultation.rules import Conflict
from ccai.consultation.store import User
from tests.consultation.conftest import csrf_of


def _id(app, email: str) -> int:
    with app.state.sessions() as db:
        return db.scalar(sa.select(User.id).where(User.email == email))


def test_owner_lists_users_and_moderator_is_refused(app, owner, new_staff):
    moderator = new_staff("moderator")
    page = owner.client.get("/admin/users")
    assert page.status_code == 200
    assert owner.email in page.text and moderator.email in page.text
    assert 'href="/admin/users"' in owner.client.get("/admin").text  # linked from the dashboard
    assert moderator.client.get("/admin/users").status_code == 403
    refused = moderator.post(f"/admin/users/{_id(app, moderator.email)}/role", {"role": "owner"})
    assert refused.status_code == 403
    # Enter in the password field submits the password form; delete is a form of its own after it
    section = page.text.split(f'id="user-{_id(app, moderator.email)}"')[1].split("</section>")[0]
    forms = re.findall(r'<form[^>]*action="([^"]+)"(.*?)</form>', section, re.S)
    assert [a.rsplit("/", 1)[1] for a, _ in forms] == ["role", "password", "delete"]
    assert "<input" not in forms[2][1].replace('type="hidden"', "").split("csrf_token")[1]


def test_role_change_and_csrf(app, owner, new_staff):
    moderator = new_staff("moderator")
    uid = _id(app, moderator.email)
    forged = owner.client.post(f"/admin/users/{uid}/role", data={"role": "owner", "csrf_token": "x"})
    assert forged.status_code == 403
    bad = owner.post(f"/admin/users/{uid}/role", {"role": "admin"})
    assert (
        bad.status_code == 400 and "Choose owner, moderator, or moderator of chosen conversations" in bad.text
    )
    done = owner.post(f"/admin/users/{uid}/role", {"role": "owner"})
    assert done.status_code == 303 and done.headers["location"] == "/admin/users?done=role"
    assert moderator.client.get("/admin/users").status_code == 200  # now an owner


def test_password_reset_validates_and_logs_the_user_out(app, owner, new_staff):
    moderator = new_staff("moderator")
    uid = _id(app, moderator.email)
    weak = owner.post(f"/admin/users/{uid}/password", {"password": "short"})
    assert weak.status_code == 400 and "at least 8 characters" in weak.text
    assert owner.post(f"/admin/users/{uid}/password", {"password": "a new long secret"}).status_code == 303
    assert moderator.client.get("/admin", follow_redirects=False).status_code == 303  # session ended
    fresh = TestClient(app)
    token = csrf_of(fresh.get("/login").text)
    login = {"email": moderator.email, "password": "a new long secret", "csrf_token": token}
    assert fresh.post("/login", data=login, follow_redirects=False).status_code == 303
    assert owner.client.get("/admin/users").status_code == 200  # the owner kept their session


def test_delete_user_but_not_yourself(app, owner, new_staff, count):
    moderator = new_staff("moderator")
    uid = _id(app, moderator.email)
    myself = owner.post(f"/admin/users/{_id(app, owner.email)}/delete")
    assert myself.status_code == 409 and "your own account" in myself.text
    # ?lang= rather than a cookie: the owner's client is shared, and may already hold a ccai_lang cookie
    assert "eigenes Konto" in owner.post(f"/admin/users/{_id(app, owner.email)}/delete?lang=de").text
    assert owner.post(f"/admin/users/{uid}/delete").status_code == 303
    assert count("users", id=uid) == 0 and count("sessions", user_id=uid) == 0
    assert moderator.client.get("/admin", follow_redirects=False).status_code == 303
    assert owner.post(f"/admin/users/{uid}/delete").status_code == 404


def test_last_owner_cannot_be_demoted_or_deleted(app, owner):
    """Checked inside a transaction that demotes every other owner, then rolled back (the database is
    shared by the session's tests)."""
    with app.state.sessions() as db:
        me = db.scalar(sa.select(User).where(User.email == owner.email))
        db.execute(sa.update(User).where(User.role == "owner", User.id != me.id).values(role="moderator"))
        with pytest.raises(Conflict, match="last owner"):
            accounts.set_role(db, me, me.id, "moderator")
        other = accounts.create_user(db, "second-owner@example.org", "long enough", "moderator")
        with pytest.raises(Conflict, match="your own"):
            accounts.delete_user(db, me, me.id)
        accounts.set_role(db, me, other.id, "owner")
        accounts.set_role(db, me, me.id, "moderator")  # two owners: allowed
        with pytest.raises(Conflict, match="last owner"):
            accounts.set_role(db, other, other.id, "moderator")
        db.rollback()
