"""Log in and out (moderators and owners)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from ccai.consultation import accounts
from ccai.consultation.rules import RuleError
from ccai.consultation.web.deps import SESSION_COOKIE, DbDep, UserFormDep, csrf_refused, login_csrf
from ccai.consultation.web.pages import render

router = APIRouter(include_in_schema=False)
LoginCsrfDep = Annotated[str, Depends(login_csrf)]


def _safe_next(target: str) -> str:
    """Only same-site paths: never redirect to another host after login."""
    return target if target.startswith("/") and not target.startswith("//") else "/admin"


@router.get("/login")
def login_page(request: Request, _csrf: LoginCsrfDep, next: str = "/admin"):
    return render(request, "login.html", next=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    db: DbDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=100)],
    next: Annotated[str, Form(max_length=500)] = "/admin",
):
    cookie = request.cookies.get("ccai_login", "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        raise csrf_refused()
    limiter, client = request.app.state.login_limiter, request.client.host if request.client else "-"
    limiter.check(email, client)  # before argon2: a refused guess costs no hashing
    user = accounts.authenticate(db, email, password)
    if user is None:
        limiter.failed(email, client)
        request.state.csrf = cookie
        return render(request, "login.html", status_code=401, error=True, next=_safe_next(next), email=email)
    limiter.succeeded(email, client)
    token = accounts.start_session(db, user)
    db.commit()
    return _logged_in(request, token, _safe_next(next))


def _logged_in(request: Request, token: str, target: str) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=accounts.SESSION_DAYS * 86400,
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.secure_cookies,
    )
    return response


# which invite form field a refusal from create_user is about
INVITE_FIELDS = {"invalid_email": "email", "user_exists": "email", "weak_password": "password"}


@router.get("/invite/{token}")
def invite_page(request: Request, db: DbDep, token: str, _csrf: LoginCsrfDep):
    invite = accounts.find_invite(db, token)  # 404 / 410 as the error page
    return render(request, "invite.html", invite=invite, token=token, error=None, field=None, email="")


@router.post("/invite/{token}")
def accept_invite(
    request: Request,
    db: DbDep,
    token: str,
    csrf_token: Annotated[str, Form(max_length=100)],
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
):
    """Create the invited account, spend the invite and log the new user in (one transaction)."""
    cookie = request.cookies.get("ccai_login", "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        raise csrf_refused()
    try:
        user = accounts.accept_invite(db, token, email, password)
    except RuleError as exc:
        db.rollback()
        if exc.code not in INVITE_FIELDS:
            raise  # unknown, used or expired: the error page says to ask for a new link
        request.state.csrf = cookie
        invite = accounts.find_invite(db, token)
        return render(
            request,
            "invite.html",
            status_code=exc.status,
            invite=invite,
            token=token,
            error=exc,
            field=INVITE_FIELDS[exc.code],
            email=email,
        )
    session = accounts.start_session(db, user)
    db.commit()
    return _logged_in(request, session, "/admin")


@router.post("/logout")
def logout(request: Request, db: DbDep, _user: UserFormDep):
    accounts.end_session(db, request.cookies[SESSION_COOKIE])
    db.commit()
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
