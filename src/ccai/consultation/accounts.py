"""Moderator and owner accounts: argon2 password hashes, login sessions with a CSRF token each.

Roles: an **owner** creates and configures conversations (and can do everything a moderator can); a
**moderator** seeds and moderates statements in every conversation; a **member** only in the conversations
``conversation_roles`` grants them (a moderator of one conversation), and sees no other. Session tokens live
in an HTTP-only cookie and only their sha256 is stored, like participant tokens. Expired sessions are
deleted at each login.

Password guessing is slowed by :class:`LoginLimiter`: failed logins are counted per account and per client
as salted digests (never in the database: no IP address is stored), in this process's memory or, with
``CCAI_REDIS_URL``, in Redis shared by every server process (``counters.py``).
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from ccai.consultation.counters import MemoryLog, RedisLog
from ccai.consultation.rules import Conflict, Forbidden, Gone, NotFound, RuleError, TooMany
from ccai.consultation.store import ConversationRole, Invite, LoginSession, User, now_ms, token_digest

ROLES = ("owner", "moderator", "member")
# the pages a member may open: the admin list, and the admin pages of a conversation they were granted
_MEMBER_OPEN = ("/admin", "/admin/", "/logout")
_CONVERSATION_PATH = re.compile(r"^/admin/c/(\d{1,10})(?:/|$)")
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
    _check_password(password)
    if db.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise Conflict("user_exists", f"a user with email {email} already exists")
    user = User(email=email, password_hash=_hasher.hash(password), role=role)
    db.add(user)
    db.flush()
    return user


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise RuleError("weak_password", "the password needs at least 8 characters")


def list_users(db: Session) -> list[User]:
    """Every account, owners first, then by email (the owners' users page)."""
    return list(db.scalars(sa.select(User).order_by(User.role.desc(), User.email)))


def get_user(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound("unknown_user", f"no user with id {user_id}")
    return user


def _owners(db: Session) -> int:
    return db.scalar(sa.select(sa.func.count()).select_from(User).where(User.role == "owner")) or 0


def set_role(db: Session, acting: User, user_id: int, role: str) -> User:
    """Change a user's role; the last owner cannot be demoted (nobody could then manage accounts)."""
    require_role(acting, "owner")
    if role not in ROLES:
        raise RuleError("invalid_role", f"role must be one of {ROLES}, got {role!r}")
    user = get_user(db, user_id)
    if user.role == "owner" and role != "owner" and _owners(db) <= 1:
        raise Conflict("last_owner", "This is the last owner: make another user owner first.")
    user.role = role
    db.flush()
    return user


def set_password(db: Session, acting: User, user_id: int, password: str) -> User:
    """An owner sets a new password (same rule as ``ccai users create``); the user's sessions end."""
    require_role(acting, "owner")
    _check_password(password)
    user = get_user(db, user_id)
    user.password_hash = _hasher.hash(password)
    if user.id != acting.id:  # others are logged out everywhere; the owner keeps their own session
        db.execute(sa.delete(LoginSession).where(LoginSession.user_id == user.id))
    db.flush()
    return user


def delete_user(db: Session, acting: User, user_id: int) -> None:
    """Delete an account (its sessions go with it; conversations and moderation keep no owner link).
    Owners cannot delete themselves, nor the last owner."""
    require_role(acting, "owner")
    user = get_user(db, user_id)
    if user.id == acting.id:
        raise Conflict("delete_self", "You cannot delete your own account.")
    if user.role == "owner" and _owners(db) <= 1:
        raise Conflict("last_owner", "This is the last owner: make another user owner first.")
    db.execute(sa.delete(LoginSession).where(LoginSession.user_id == user.id))
    db.delete(user)
    db.flush()


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
    """Password guessing slowed per (account, client) with backoff, so no stranger can lock a user out.

    - one client guessing one account: ``per_account`` failures in ``window_s`` are free, then each further
      try waits ``backoff_s`` doubled per failure (capped at ``window_s``) since the last failure;
    - one client spraying accounts: at most ``per_client`` failures in ``window_s``;
    - many clients on one account (a botnet): at most ``per_account_global`` failures in ``window_s``, which
      does **not** apply to a client that has logged in to that account before: the real user keeps in.

    Refusals (429) come before argon2 runs. Kept as salted digests in ``log`` (``counters.py``), so
    nothing about clients reaches the database; processes sharing a Redis log count failures together.
    """

    def __init__(
        self,
        per_account: int = 5,
        per_client: int = 20,
        window_s: float = 900.0,
        clock=time.time,
        backoff_s: float = 30.0,
        per_account_global: int = 100,
        log: MemoryLog | RedisLog | None = None,
        salt: bytes | None = None,
    ):
        self.per_account, self.per_client, self.window_s, self.clock = (
            per_account,
            per_client,
            window_s,
            clock,
        )
        self.backoff_s, self.per_account_global = backoff_s, per_account_global
        self.log = log if log is not None else MemoryLog(max_keys=10_000)
        self.salt = salt or secrets.token_bytes(16)

    def _key(self, kind: str, value: str) -> str:
        return "l" + hashlib.sha256(self.salt + f"{kind}:{value}".encode()).hexdigest()

    def _keys(self, email: str, client: str) -> tuple[str, str, str]:
        account = email.strip().lower()
        return self._key("p", f"{account}\n{client}"), self._key("c", client), self._key("a", account)

    def check(self, email: str, client: str) -> None:
        """Raise :class:`TooMany` when this client must wait before trying this account again."""
        now = self.clock()
        pair, by_client, by_account = self._keys(email, client)
        waits = []
        times = self.log.recent(pair, self.window_s, now)
        if len(times) >= self.per_account:
            backoff = min(self.window_s, self.backoff_s * 2 ** (len(times) - self.per_account))
            waits.append(times[-1] + backoff - now)
        times = self.log.recent(by_client, self.window_s, now)
        if len(times) >= self.per_client:
            waits.append(times[0] + self.window_s - now)
        times = self.log.recent(by_account, self.window_s, now)
        if len(times) >= self.per_account_global and not self.log.marked(pair):
            waits.append(times[0] + self.window_s - now)
        wait = max(waits, default=0)
        if wait > 0:
            text = f"{math.ceil(wait / 60)} minute(s)" if wait > 90 else f"{math.ceil(wait)} second(s)"
            raise TooMany(
                "too_many_logins", f"Too many failed logins; try again in {text}.", wait=math.ceil(wait)
            )

    def failed(self, email: str, client: str) -> None:
        now = self.clock()
        for key in self._keys(email, client):
            self.log.add(key, self.window_s, now)

    def succeeded(self, email: str, client: str) -> None:
        pair = self._keys(email, client)[0]
        self.log.clear(pair)
        self.log.mark(pair, ttl=SESSION_DAYS * 86_400)  # this client knows the password: trusted


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


# ---------------------------------------------------------------- web invites

INVITE_DAYS = (1, 3, 7, 14, 30)


def create_invite(
    db: Session, acting: User, role: str, days: int, note: str = "", conversation_id: int | None = None
) -> str:
    """A single-use invite for an account of ``role``, valid ``days``; returns the raw token (shown once:
    only its hash is stored, like session tokens, so a database reader cannot use it). A ``member``
    invite names the conversation the new account will moderate."""
    require_role(acting, "owner")
    if role not in ROLES:
        raise RuleError("invalid_role", f"role must be one of {ROLES}, got {role!r}", field="role")
    if role == "member":
        from ccai.consultation.store import Conversation

        if conversation_id is None or db.get(Conversation, conversation_id) is None:
            raise RuleError(
                "invite_conversation",
                "conversation: choose the conversation to moderate",
                field="conversation",
            )
    else:
        conversation_id = None
    if days not in INVITE_DAYS:
        raise RuleError(
            "invalid_days", f"days must be one of {INVITE_DAYS}", field="days", allowed=INVITE_DAYS
        )
    if len(note.strip()) > 200:
        raise RuleError("note_too_long", "note: at most 200 characters", field="note")
    token = secrets.token_urlsafe(32)
    db.add(
        Invite(
            token_hash=token_digest(token),
            role=role,
            note=note.strip(),
            created_by=acting.id,
            created_ms=now_ms(),
            expires_ms=now_ms() + days * 86_400_000,
            conversation_id=conversation_id,
        )
    )
    db.flush()
    return token


def list_invites(db: Session) -> list[Invite]:
    """Invites not yet used and not expired, newest first (the users page)."""
    return list(
        db.scalars(
            sa.select(Invite)
            .where(Invite.used_ms.is_(None), Invite.expires_ms > now_ms())
            .order_by(Invite.id.desc())
        )
    )


def revoke_invite(db: Session, acting: User, invite_id: int) -> None:
    require_role(acting, "owner")
    if db.execute(sa.delete(Invite).where(Invite.id == invite_id, Invite.used_ms.is_(None))).rowcount != 1:
        raise NotFound("no_invite", f"No open invite {invite_id}.")


def find_invite(db: Session, token: str) -> Invite:
    """The invite behind ``token`` if it can still be used; otherwise why not (404 unknown, 410 used or
    expired, so the person is told to ask for a new link rather than retry)."""
    invite = db.scalar(sa.select(Invite).where(Invite.token_hash == token_digest(token[:100])))
    if invite is None:
        raise NotFound("invite_unknown", "This invite link is not valid (it may have been withdrawn).")
    if invite.used_ms is not None:
        raise Gone("invite_used", "This invite link has been used already; ask for a new one.")
    if invite.expires_ms <= now_ms():
        raise Gone("invite_expired", "This invite link has expired; ask for a new one.")
    return invite


def accept_invite(db: Session, token: str, email: str, password: str) -> User:
    """Create the invited account and spend the invite, in the caller's one transaction.

    The invite is claimed by one conditional UPDATE (unused and unexpired), so two people opening the
    same link at once cannot both get an account: the second finds it used. A refused email or password
    raises before the claim commits, and the caller's rollback leaves the invite usable.
    """
    invite = find_invite(db, token)
    user = create_user(db, email, password, invite.role)
    claimed = db.execute(
        sa.update(Invite)
        .where(Invite.id == invite.id, Invite.used_ms.is_(None), Invite.expires_ms > now_ms())
        .values(used_ms=now_ms(), used_by=user.id)
    ).rowcount
    if claimed != 1:
        raise Gone("invite_used", "This invite link has been used already; ask for a new one.")
    if invite.conversation_id is not None:
        grant(db, user, invite.conversation_id)
    return user


# ---------------------------------------------------------------- moderators of one conversation


def grant(db: Session, user: User, conversation_id: int) -> None:
    """Let a ``member`` moderate one conversation (idempotent). Owners and moderators need no grant."""
    if user.role != "member":
        raise RuleError("not_member", "only members get per-conversation rights; others have them all")
    exists = db.get(ConversationRole, (conversation_id, user.id))
    if exists is None:
        db.add(ConversationRole(conversation_id=conversation_id, user_id=user.id, created_ms=now_ms()))
        db.flush()


def revoke(db: Session, conversation_id: int, user_id: int) -> None:
    db.execute(
        sa.delete(ConversationRole).where(
            ConversationRole.conversation_id == conversation_id, ConversationRole.user_id == user_id
        )
    )


def granted(db: Session, user: User) -> set[int]:
    """The conversations a member may moderate."""
    return set(
        db.scalars(sa.select(ConversationRole.conversation_id).where(ConversationRole.user_id == user.id))
    )


def conversation_moderators(db: Session, conversation_id: int) -> list[User]:
    return list(
        db.scalars(
            sa.select(User)
            .join(ConversationRole, ConversationRole.user_id == User.id)
            .where(ConversationRole.conversation_id == conversation_id)
            .order_by(User.email)
        )
    )


def check_member_path(db: Session, user: User, path: str) -> None:
    """A member may open the admin list and the admin pages of their conversations, nothing else.

    Checked for every signed-in request (``deps.require_user``), by path, so an admin page added later
    is closed to members until it is under ``/admin/c/{id}`` of a granted conversation: a whitelist,
    not a check each route must remember."""
    if user.role != "member" or path in _MEMBER_OPEN:
        return
    match = _CONVERSATION_PATH.match(path)
    if match and db.get(ConversationRole, (int(match.group(1)), user.id)) is not None:
        return
    raise Forbidden("not_your_conversation", "You moderate other conversations, not this one.")
