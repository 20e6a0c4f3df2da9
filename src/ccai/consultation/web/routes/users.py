"""The owners' users page: list accounts, change a role, set a new password, delete an account, and
invite someone by a single-use, expiring link (they choose their own password at ``/invite/{token}``).

Thin routes over ``accounts.py`` (which holds the rules: not yourself, not the last owner). Every POST
carries the session's CSRF token (``OwnerFormDep``); refusals come back as the error page.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from ccai.consultation import accounts
from ccai.consultation.rules import RuleError
from ccai.consultation.store import Conversation
from ccai.consultation.web.deps import DbDep, Id, OwnerDep, OwnerFormDep
from ccai.consultation.web.pages import render

router = APIRouter(prefix="/admin/users", include_in_schema=False)


def _done(what: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/users?done={what}", status_code=303)


def _page(request: Request, db: DbDep, status_code: int = 200, **context):
    context.setdefault("invite_error", None)
    context.setdefault("draft", {"role": "moderator", "days": 7, "note": "", "conversation": ""})
    return render(
        request,
        "admin/users.html",
        status_code=status_code,
        users=accounts.list_users(db),
        roles=accounts.ROLES,
        invites=accounts.list_invites(db),
        invite_days=accounts.INVITE_DAYS,
        conversations=db.scalars(sa.select(Conversation).order_by(Conversation.id.desc())).all(),
        **context,
    )


@router.get("")
def users_page(request: Request, user: OwnerDep, db: DbDep):
    return _page(request, db)


@router.post("/invites")
def invite(
    request: Request,
    user: OwnerFormDep,
    db: DbDep,
    role: Annotated[str, Form(max_length=20)] = "",
    days: Annotated[str, Form(max_length=10)] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
    conversation: Annotated[str, Form(max_length=12)] = "",
):
    """Make an invite and show its link once (only the token's hash is kept, so it cannot be shown again)."""
    draft = {"role": role, "days": days, "note": note, "conversation": conversation}
    try:
        number = int(days) if days.strip().isdigit() else -1
        cid = int(conversation) if conversation.strip().isdigit() else None
        token = accounts.create_invite(db, user, role, number, note, cid)
    except RuleError as exc:
        db.rollback()
        return _page(request, db, status_code=exc.status, invite_error=exc, draft=draft)
    db.commit()
    base = request.app.state.settings.public_url or str(request.base_url).rstrip("/")
    return _page(request, db, status_code=201, new_link=f"{base}/invite/{token}")


@router.post("/invites/{invite_id}/revoke")
def revoke(user: OwnerFormDep, db: DbDep, invite_id: Id):
    accounts.revoke_invite(db, user, invite_id)
    db.commit()
    return _done("revoked")


@router.post("/{user_id}/role")
def change_role(user: OwnerFormDep, db: DbDep, user_id: Id, role: Annotated[str, Form(max_length=20)]):
    accounts.set_role(db, user, user_id, role)
    db.commit()
    return _done("role")


@router.post("/{user_id}/password")
def reset_password(
    user: OwnerFormDep, db: DbDep, user_id: Id, password: Annotated[str, Form(max_length=200)]
):
    accounts.set_password(db, user, user_id, password)
    db.commit()
    return _done("password")


@router.post("/{user_id}/delete")
def delete(user: OwnerFormDep, db: DbDep, user_id: Id):
    accounts.delete_user(db, user, user_id)
    db.commit()
    return _done("deleted")
