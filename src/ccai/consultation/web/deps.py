"""Typed dependencies: the database session, the conversation, the participant, the logged-in user, CSRF.

Everything cross-cutting arrives in a handler as an ``Annotated`` alias, so handlers stay a few lines
(full-stack-fastapi-template style). CSRF: a logged-in user's forms carry the session's token; a
participant's forms carry the HMAC of their cookie token; the login form uses a double-submit cookie.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Form, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from ccai.consultation import accounts, service, store
from ccai.consultation.rules import Forbidden
from ccai.consultation.store import Conversation, Participant, User
from ccai.consultation.web.pages import queue_cookie, sign

SESSION_COOKIE = "ccai_session"


def csrf_refused() -> Forbidden:
    """The one answer to a form whose CSRF token is missing or wrong."""
    return Forbidden("csrf", "The form expired or came from another site; reload the page and try again.")


class NeedLogin(Exception):
    """Raised by the user dependencies; the app turns it into a redirect (HTML) or a 401 (API)."""


#: requests that may write: their SQLite transactions take the write lock at BEGIN (store.WRITE_INTENT)
WRITING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def get_db(request: Request) -> AsyncIterator[Session]:
    """A session per request. Async on purpose: creating and closing a Session does no I/O worth a
    thread hop, and the sync handlers that use it already run in the thread pool. A request that may write
    says so up front, so on SQLite it waits for the write lock rather than failing mid-way (the option means
    nothing to PostgreSQL)."""
    writes = request.method in WRITING_METHODS
    db = request.app.state.sessions(execution_options={store.WRITE_INTENT: True} if writes else None)
    try:
        yield db
    finally:
        db.close()


DbDep = Annotated[Session, Depends(get_db)]


async def get_engine(request: Request) -> sa.Engine:
    return request.app.state.engine


EngineDep = Annotated[sa.Engine, Depends(get_engine)]


# ids in paths are 32-bit: a larger number is a 422, not a database overflow
Id = Annotated[int, Path(ge=0, le=2**31 - 1)]


def get_conversation(conversation_id: Id, db: DbDep) -> Conversation:
    return service.get_conversation(db, conversation_id)


ConversationDep = Annotated[Conversation, Depends(get_conversation)]


# ------------------------------------------------ participants (cookie for HTML, bearer for API)


def cookie_name(conversation_id: int) -> str:
    return f"ccai_p{conversation_id}"


def participant_cookie(request: Request, conversation_id: Id) -> str:
    """The participant token from this conversation's cookie, issuing a fresh one (HTTP-only) if absent."""
    token = request.cookies.get(cookie_name(conversation_id))
    if not token or len(token) > 64:
        token = service.new_token()
        # over HTTPS the cookie also travels inside another site's iframe (an embed), partitioned by that
        # site; the forms' HMAC token, not SameSite, is what stops cross-site posts
        secure = request.app.state.settings.secure_cookies
        queue_cookie(
            request,
            cookie_name(conversation_id),
            token,
            max_age=365 * 86400,
            httponly=True,
            samesite="none" if secure else "lax",
            secure=secure,
            partitioned=secure,
        )
    request.state.csrf = sign(request.app.state.settings.secret_key, "p:" + token)
    return token


CookieTokenDep = Annotated[str, Depends(participant_cookie)]


def participant_form(
    request: Request, conversation_id: Id, csrf_token: Annotated[str, Form(max_length=100)]
) -> str:
    """The cookie token of a participant posting a form, once the form's CSRF token matches it."""
    token = request.cookies.get(cookie_name(conversation_id))
    framed = (
        request.headers.get("sec-fetch-dest") == "iframe"
        or request.headers.get("sec-fetch-site") == "cross-site"
    )
    if not token and framed:  # an embed whose browser withholds our cookie: reloading would loop for ever
        raise Forbidden(
            "cookies_blocked",
            "Your browser does not send this site's cookie inside the page that embeds it, so your vote "
            "cannot be kept. Open the conversation in its own tab (embeds need HTTPS and --secure-cookies).",
        )
    expected = sign(request.app.state.settings.secret_key, "p:" + token) if token else ""
    if not token or not hmac.compare_digest(expected, csrf_token):
        raise csrf_refused()
    request.state.csrf = expected
    return token


ParticipantFormDep = Annotated[str, Depends(participant_form)]

bearer = HTTPBearer(auto_error=False, description="the participant token from POST /participants")


async def api_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
    if credentials is None or not credentials.credentials or len(credentials.credentials) > 64:
        raise Forbidden("token_required", "Send the participant token as 'Authorization: Bearer <token>'.")
    return credentials.credentials


ApiTokenDep = Annotated[str, Depends(api_token)]


def api_participant(conversation: ConversationDep, token: ApiTokenDep, db: DbDep) -> Participant:
    participant = service.find_participant(db, conversation.id, token)
    if participant is None:
        raise Forbidden("unknown_participant", "Unknown participant token for this conversation; join first.")
    return participant


ApiParticipantDep = Annotated[Participant, Depends(api_participant)]


# ---------------------------------------------------------------- moderators and owners


def optional_user(request: Request, db: DbDep) -> User | None:
    found = accounts.session_for(db, request.cookies.get(SESSION_COOKIE))
    if found is None:
        return None
    session, user = found
    request.state.user, request.state.csrf = user, session.csrf_token
    return user


OptionalUserDep = Annotated[User | None, Depends(optional_user)]


def require_user(request: Request, user: OptionalUserDep, db: DbDep) -> User:
    """A signed-in user; a ``member`` only on the pages of conversations they moderate."""
    if user is None:
        raise NeedLogin
    accounts.check_member_path(db, user, request.url.path)
    return user


UserDep = Annotated[User, Depends(require_user)]


def require_owner(user: UserDep) -> User:
    accounts.require_role(user, "owner")
    return user


OwnerDep = Annotated[User, Depends(require_owner)]


def checked_form(request: Request, user: UserDep, csrf_token: Annotated[str, Form(max_length=100)]) -> User:
    """The user posting a form, once its CSRF token equals the session's."""
    if not hmac.compare_digest(request.state.csrf, csrf_token):
        raise csrf_refused()
    return user


UserFormDep = Annotated[User, Depends(checked_form)]


def owner_form(user: UserFormDep) -> User:
    accounts.require_role(user, "owner")
    return user


OwnerFormDep = Annotated[User, Depends(owner_form)]


def login_csrf(request: Request) -> str:
    token = request.cookies.get("ccai_login")
    if not token or len(token) > 64:
        token = secrets.token_urlsafe(24)
        queue_cookie(request, "ccai_login", token, httponly=True, samesite="strict")
    request.state.csrf = token
    return token


# ---------------------------------------------------------------- abuse controls


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"


def join(request: Request, db: Session, conversation: Conversation, token: str, xid: str | None = None):
    """:func:`service.join` with the per-address join limit applied to new participants only."""
    limiter = request.app.state.limiter
    return service.join(db, conversation, token, xid, lambda: limiter.join(client_address(request)))


def limit_votes(request: Request, token: str) -> None:
    request.app.state.limiter.vote(client_address(request), token)


def limit_statements(request: Request, token: str) -> None:
    request.app.state.limiter.statement(client_address(request), token)


def statement_cap(request: Request) -> int:
    return request.app.state.limiter.limits.statement_cap
