"""The owners' users page: list accounts, change a role, set a new password, delete an account.

Thin routes over ``accounts.py`` (which holds the rules: not yourself, not the last owner). Every POST
carries the session's CSRF token (``OwnerFormDep``); refusals come back as the error page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from ccai.consultation import accounts
from ccai.consultation.web.deps import DbDep, Id, OwnerDep, OwnerFormDep
from ccai.consultation.web.pages import render

router = APIRouter(prefix="/admin/users", include_in_schema=False)


def _done(what: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/users?done={what}", status_code=303)


@router.get("")
def users_page(request: Request, user: OwnerDep, db: DbDep):
    return render(request, "admin/users.html", users=accounts.list_users(db), roles=accounts.ROLES)


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
