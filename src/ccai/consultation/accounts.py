"""Moderator and owner accounts: argon2 password hashes, login sessions with a CSRF token each.

Roles: an **owner** creates and configures conversations (and can do everything a moderator can);
a **moderator** seeds and moderates statements. Session tokens live in an HTTP-only cookie and only
their sha256 is stored, like participant tokens. Expired sessions are deleted at each login.

Password guessing is slowed by :class:`LoginLimiter`: failed logins are counted per account and per
client in memory (never in the database: no IP address is stored), per worker process.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from collections import deque

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from ccai.consultation.rules import Conflict, Forbidden, RuleError, TooMany
from ccai.consultation.store import LoginSession, User, now_ms, token_digest

ROLES = ("owner", "moderator")
SESSION_DAYS = 14
_hasher = PasswordHasher()
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def create_user(db: Session, email: str, password: str, role: str) -> User:
    """A new account; the password is stored only as an argon2 hash."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise RuleError("invalid_email", f"not an email address: {email!r}")
    if role not in ROLES:
        raise RuleError("invalid_role", f"role must be one of {ROLES}, got {role!r}")
    if len(password) < 8:
        raise RuleError("weak_password", "the password needs at least 8 characters")
    if db.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise Conflict("user_exists", f"a user with email {email} already exists")
    user = User(email=email, password_hash=_hasher.hash(password), role=role)
    db.add(user)
    db.flush()
    return user


def authenticate(db: Session, email: str, password: str) -> User | None:
    user = db.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None:
        _hasher.hash(password)  # same work either way: no timing hint that the email exists
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


class LoginLimiter:
    """At most ``per_account`` failed logins per email and ``per_client`` per client address in any
    ``window_s`` seconds; beyond that, logins are refused (429) before the password is checked.

    Kept in this process's memory as salted digests, so nothing about clients reaches the database. With
    N workers an attacker gets at most N times the limit; that still turns a brute force into a crawl.
    A successful login clears the account's count (not the client's).
    """

    def __init__(
        self, per_account: int = 5, per_client: int = 20, window_s: float = 900.0, clock=time.monotonic
    ):
        self.per_account, self.per_client, self.window_s, self.clock = (
            per_account,
            per_client,
            window_s,
            clock,
        )
        self.failures: dict[str, deque[float]] = {}
        self.salt = secrets.token_bytes(16)

    def _key(self, kind: str, value: str) -> str:
        return hashlib.sha256(self.salt + f"{kind}:{value}".encode()).hexdigest()

    def _keys(self, email: str, client: str) -> list[tuple[str, int]]:
        return [
            (self._key("a", email.strip().lower()), self.per_account),
            (self._key("c", client), self.per_client),
        ]

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def check(self, email: str, client: str) -> None:
        """Raise :class:`TooMany` when this account or this client has failed too often lately."""
        now = self.clock()
        for key, limit in self._keys(email, client):
            times = self._recent(key, now)
            if len(times) >= limit:
                wait = math.ceil((times[0] + self.window_s - now) / 60)
                raise TooMany("too_many_logins", f"Too many failed logins; try again in {wait} minute(s).")

    def failed(self, email: str, client: str) -> None:
        now = self.clock()
        if len(self.failures) > 10_000:  # forget keys whose window has passed
            self.failures = {k: t for k, t in self.failures.items() if self._recent(k, now)}
        for key, _limit in self._keys(email, client):
            self.failures[key] = self._recent(key, now)
            self.failures[key].append(now)

    def succeeded(self, email: str) -> None:
        self.failures.pop(self._key("a", email.strip().lower()), None)


def start_session(db: Session, user: User) -> str:
    """A new login session (expired ones are deleted on the way); returns the raw token for the cookie."""
    purge_expired(db)
    token = secrets.token_urlsafe(32)
    expires = now_ms() + SESSION_DAYS * 86_400_000
    db.add(
        LoginSession(
            token_hash=token_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            expires_ms=expires,
        )
    )
    return token


def session_for(db: Session, token: str | None) -> tuple[LoginSession, User] | None:
    if not token:
        return None
    row = db.execute(
        sa.select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_hash == token_digest(token), LoginSession.expires_ms > now_ms())
    ).first()
    return None if row is None else (row[0], row[1])


def purge_expired(db: Session) -> int:
    """Delete the login sessions past their expiry; returns how many."""
    return db.execute(sa.delete(LoginSession).where(LoginSession.expires_ms <= now_ms())).rowcount


def end_session(db: Session, token: str) -> None:
    db.execute(sa.delete(LoginSession).where(LoginSession.token_hash == token_digest(token)))


def require_role(user: User, *roles: str) -> None:
    if user.role not in roles:
        raise Forbidden("forbidden", f"this needs the role {' or '.join(roles)}; you are {user.role}")
