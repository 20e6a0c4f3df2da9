"""Login rate limiting (per account and per client) and the clean-up of expired sessions."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ccai.consultation import accounts
from ccai.consultation.rules import TooMany
from ccai.consultation.store import LoginSession, now_ms

from .conftest import PASSWORD, make_user


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_counts_failures_per_account_and_client_with_backoff():
    clock = Clock()
    limiter = accounts.LoginLimiter(per_account=3, per_client=6, window_s=600, clock=clock, backoff_s=30)
    for _ in range(3):
        limiter.check("A@example.org", "10.0.0.1")
        limiter.failed("a@example.org", "10.0.0.1")
    with pytest.raises(TooMany, match="30 second"):
        limiter.check("a@example.org", "10.0.0.1")  # this client waits before guessing this account again
    limiter.check("a@example.org", "10.0.0.2")  # the real user elsewhere is not locked out
    clock.now += 31
    limiter.check("a@example.org", "10.0.0.1")
    limiter.failed("a@example.org", "10.0.0.1")
    with pytest.raises(TooMany, match="60 second"):  # the wait doubles with each further failure
        limiter.check("a@example.org", "10.0.0.1")
    limiter.check("b@example.org", "10.0.0.1")  # the client may still try another account...
    limiter.failed("b@example.org", "10.0.0.1")
    limiter.failed("c@example.org", "10.0.0.1")
    with pytest.raises(TooMany):
        limiter.check("d@example.org", "10.0.0.1")  # ...until its own limit (6 failures) is reached
    clock.now += 601
    limiter.check("a@example.org", "10.0.0.1")  # the window has passed
    limiter.failed("e@example.org", "10.0.0.9")
    limiter.succeeded("e@example.org", "10.0.0.9")
    assert all("10.0.0" not in key for key in limiter.log.events)  # only salted digests are kept


def test_many_clients_on_one_account_do_not_lock_out_its_known_user():
    clock = Clock()
    limiter = accounts.LoginLimiter(per_account=5, per_client=50, per_account_global=10, clock=clock)
    limiter.succeeded("chair@example.org", "192.0.2.7")  # the chair logged in from here before
    for bot in range(5):  # a botnet: each address guesses twice
        for _ in range(2):
            limiter.check("chair@example.org", f"198.51.100.{bot}")
            limiter.failed("chair@example.org", f"198.51.100.{bot}")
    with pytest.raises(TooMany):
        limiter.check("chair@example.org", "198.51.100.99")  # a new address is slowed down...
    limiter.check("chair@example.org", "192.0.2.7")  # ...the chair's own address is not


@pytest.fixture
def fresh_limiter(app):
    """A limiter of its own for the test (the app is shared by the whole session)."""
    saved = app.state.login_limiter
    app.state.login_limiter = accounts.LoginLimiter(per_account=2, per_client=50)
    yield app.state.login_limiter
    app.state.login_limiter = saved


def _login(client: TestClient, email: str, password: str):
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    data = {"email": email, "password": password, "csrf_token": token}
    return client.post("/login", data=data, follow_redirects=False)


def test_login_is_refused_after_repeated_failures(app, fresh_limiter):
    email, client = make_user(app, "moderator"), TestClient(app)
    assert _login(client, email, "wrong password").status_code == 401
    assert _login(client, email, "wrong again").status_code == 401
    refused = _login(client, email, PASSWORD)  # even the right password waits now, from this client
    assert refused.status_code == 429 and "Too many failed logins" in refused.text
    assert refused.headers["retry-after"].isdigit()
    assert client.get("/admin", follow_redirects=False).status_code == 303  # not logged in


def test_login_deletes_expired_sessions(app, fresh_limiter):
    email = make_user(app, "moderator")
    with app.state.sessions() as db:
        user = db.scalar(sa.select(accounts.User).where(accounts.User.email == email))
        db.add(LoginSession(token_hash="e" * 64, user_id=user.id, csrf_token="x", expires_ms=now_ms() - 1))
        db.commit()
    assert _login(TestClient(app), email, PASSWORD).status_code == 303
    with app.state.sessions() as db:
        assert db.get(LoginSession, "e" * 64) is None
        assert db.scalar(sa.select(sa.func.count()).where(LoginSession.user_id == user.id)) == 1
