"""Moderator and owner accounts: argon2 password hashes, login sessions with a CSRF token each.

Roles: an **owner** creates and configures conversations (and can do everything a moderator can);
a **moderator** seeds and moderates statements. Session tokens live in an HTTP-only cookie and only
their sha256 is stored, like participant tokens.
"""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from ccai.consultation.rules import Conflict, Forbidden, RuleError
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


def start_session(db: Session, user: User) -> str:
    """A new login session; returns the raw token for the cookie."""
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


def end_session(db: Session, token: str) -> None:
    db.execute(sa.delete(LoginSession).where(LoginSession.token_hash == token_digest(token)))


def require_role(user: User, *roles: str) -> None:
    if user.role not in roles:
        raise Forbidden("forbidden", f"this needs the role {' or '.join(roles)}; you are {user.role}")
