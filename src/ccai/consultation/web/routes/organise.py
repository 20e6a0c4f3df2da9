"""The organiser's per-conversation pages: the statement table, deleting a conversation, editing and
reordering its questions (logic in ``organise.py``).

A refused form comes back as the same page with the message beside the field it names (``aria-invalid``,
``aria-describedby``) and what was typed kept, in the reader's language, instead of an error page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse

from ccai.consultation import accounts, organise
from ccai.consultation.rules import RuleError
from ccai.consultation.web.deps import ConversationDep, DbDep, Id, OwnerDep, OwnerFormDep, UserDep
from ccai.consultation.web.pages import render

router = APIRouter(prefix="/admin/c/{conversation_id}", include_in_schema=False)
Text = Annotated[str, Form(max_length=20_000)]


@router.get("/statements")
def statements_page(
    request: Request,
    user: UserDep,
    conversation: ConversationDep,
    db: DbDep,
    status: Annotated[str, Query(max_length=20)] = "all",
    q: Annotated[str, Query(max_length=1000)] = "",
    sort: Annotated[str, Query(max_length=20)] = "number",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
):
    """Moderators and owners: every statement with its status and current votes, filtered and sorted."""
    error = None
    try:
        table = organise.statement_table(db, conversation, status, q, sort, page)
    except RuleError as exc:
        error = exc
        table = organise.statement_table(db, conversation, "all", "", "number", 1)
    return render(
        request,
        "admin/statements.html",
        status_code=400 if error else 200,
        conversation=conversation,
        table=table,
        error=error,
        form={"status": status, "q": q, "sort": sort},
        statuses=list(organise.STATUSES),
        sorts=organise.SORTS,
    )


@router.get("/delete")
def delete_page(request: Request, user: OwnerDep, conversation: ConversationDep, db: DbDep):
    return render(
        request,
        "admin/delete.html",
        conversation=conversation,
        footprint=organise.footprint(db, conversation),
        error=None,
        typed="",
    )


@router.post("/delete")
def delete(
    request: Request,
    user: OwnerFormDep,
    conversation: ConversationDep,
    db: DbDep,
    confirm: Annotated[str, Form(max_length=1000)] = "",
):
    try:
        organise.delete_conversation(db, conversation, confirm)
    except RuleError as exc:
        db.rollback()
        return render(
            request,
            "admin/delete.html",
            status_code=exc.status,
            conversation=conversation,
            footprint=organise.footprint(db, conversation),
            error=exc,
            typed=confirm,
        )
    db.commit()
    return RedirectResponse("/admin?done=deleted", status_code=303)


@router.get("/questions/{question_id}")
def question_page(
    request: Request, user: OwnerDep, conversation: ConversationDep, db: DbDep, question_id: Id
):
    question = organise.get_question(db, conversation, question_id)
    draft = {
        "text": question.text,
        "choices": question.choices,
        "eligible_choices": question.eligible_choices,
    }
    return render(
        request, "admin/question.html", conversation=conversation, question=question, draft=draft, error=None
    )


@router.post("/questions/{question_id}")
def edit_question(
    request: Request,
    user: OwnerFormDep,
    conversation: ConversationDep,
    db: DbDep,
    question_id: Id,
    text: Text = "",
    choices: Text = "",
    eligible_choices: Text = "",
):
    question = organise.get_question(db, conversation, question_id)
    try:
        organise.edit_question(db, question, text, choices, eligible_choices)
    except RuleError as exc:
        db.rollback()
        question = organise.get_question(db, conversation, question_id)
        draft = {"text": text, "choices": choices, "eligible_choices": eligible_choices}
        return render(
            request,
            "admin/question.html",
            status_code=exc.status,
            conversation=conversation,
            question=question,
            draft=draft,
            error=exc,
        )
    db.commit()
    return RedirectResponse(f"/admin/c/{conversation.id}?saved=question#questions", status_code=303)


@router.post("/questions/{question_id}/move")
def move_question(
    user: OwnerFormDep,
    conversation: ConversationDep,
    db: DbDep,
    question_id: Id,
    direction: Annotated[str, Form(max_length=10)],
):
    question = organise.get_question(db, conversation, question_id)
    organise.move_question(db, conversation, question, direction)
    db.commit()
    return RedirectResponse(f"/admin/c/{conversation.id}?saved=order#q-{question.id}", status_code=303)


@router.post("/moderators")
def add_moderator(
    user: OwnerFormDep,
    conversation: ConversationDep,
    db: DbDep,
    user_id: Annotated[int, Form(ge=0, le=2**31 - 1)],
):
    """Let a member moderate this conversation (the users page makes members, or an invite does)."""
    accounts.grant(db, accounts.get_user(db, user_id), conversation.id)
    db.commit()
    return RedirectResponse(f"/admin/c/{conversation.id}?saved=moderators#moderators", status_code=303)


@router.post("/moderators/{user_id}/remove")
def remove_moderator(user: OwnerFormDep, conversation: ConversationDep, db: DbDep, user_id: Id):
    accounts.revoke(db, conversation.id, user_id)
    db.commit()
    return RedirectResponse(f"/admin/c/{conversation.id}?saved=moderators#moderators", status_code=303)
