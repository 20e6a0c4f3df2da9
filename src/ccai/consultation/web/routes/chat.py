"""The chat page (participants when the organiser allows it, organisers always) and attaching a constitution.

A participant's question counts against the statements limiter (a chat question makes every model write,
which costs far more than a vote); the organiser's page is behind the login. Nothing asked is stored.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse

from ccai.consultation import chat, judging
from ccai.consultation.rules import NotFound, RuleError
from ccai.consultation.store import Conversation
from ccai.consultation.web.deps import (
    ConversationDep,
    CookieTokenDep,
    DbDep,
    OwnerFormDep,
    ParticipantFormDep,
    UserDep,
    UserFormDep,
    limit_statements,
)
from ccai.consultation.web.pages import render

router = APIRouter(include_in_schema=False)
Question = Annotated[str, Form(max_length=5000)]


def finder(request: Request):
    """The app's MiniLM (near-duplicate hints) or, when those are off, one loaded for the chat alone."""
    state = request.app.state
    if state.finder is None and getattr(state, "chat_finder", None) is None:
        from ccai.consultation.similar import NearDuplicateFinder

        state.chat_finder = NearDuplicateFinder()
    return state.finder or state.chat_finder


def _chat(request: Request, db, conversation: Conversation, action: str, question: str | None):
    found = judging.settings(db, conversation.id)
    models = judging.models(db, conversation.id)
    constitution = chat.attached(db, conversation.id)
    db.rollback()
    result, error = None, None
    if question is not None:
        try:
            text = chat.check_question(question)
            if not models:
                raise RuleError("no_models", "No models are configured for this conversation yet.")
            replies = chat.ask(models, text, found.max_tokens, judging.default_client)
            principles = chat.relevant_principles(constitution, text, finder(request))
            result = chat.ChatResult(text, replies, principles)
        except RuleError as exc:
            error = exc
    return render(
        request,
        "chat.html",
        conversation=conversation,
        models=models,
        constitution=constitution,
        action=action,
        result=result,
        error=error,
        draft=question or "",
        source_lines=chat.source_lines,
        status_code=error.status if error else 200,
    )


def _public(db, conversation: Conversation) -> None:
    if not (judging.settings(db, conversation.id).chat_public and conversation.is_open):
        db.rollback()
        raise NotFound("no_chat", "This conversation has no chat page open to participants.")


@router.get("/c/{conversation_id}/chat")
def chat_page(request: Request, conversation: ConversationDep, token: CookieTokenDep, db: DbDep):
    _public(db, conversation)
    return _chat(request, db, conversation, f"/c/{conversation.id}/chat", None)


@router.post("/c/{conversation_id}/chat")
def chat_ask(
    request: Request, conversation: ConversationDep, token: ParticipantFormDep, db: DbDep, question: Question
):
    _public(db, conversation)
    limit_statements(request, token)
    return _chat(request, db, conversation, f"/c/{conversation.id}/chat", question)


@router.get("/admin/c/{conversation_id}/chat")
def admin_chat_page(request: Request, user: UserDep, conversation: ConversationDep, db: DbDep):
    return _chat(request, db, conversation, f"/admin/c/{conversation.id}/chat", None)


@router.post("/admin/c/{conversation_id}/chat")
def admin_chat_ask(
    request: Request, user: UserFormDep, conversation: ConversationDep, db: DbDep, question: Question
):
    return _chat(request, db, conversation, f"/admin/c/{conversation.id}/chat", question)


@router.post("/admin/c/{conversation_id}/judging/constitution")
def attach_constitution(user: OwnerFormDep, conversation: ConversationDep, db: DbDep, file: UploadFile):
    constitution = chat.load_constitution(
        file.file.read(chat.MAX_CONSTITUTION_BYTES + 1), file.filename or "file"
    )
    judging.settings(db, conversation.id).constitution = constitution.to_json()
    db.commit()
    return RedirectResponse(f"/admin/c/{conversation.id}/judging?saved=1", status_code=303)


@router.post("/admin/c/{conversation_id}/judging/adherence")
def attach_adherence(user: OwnerFormDep, conversation: ConversationDep, db: DbDep, file: UploadFile):
    """The adherence result of a ``ccai eval`` run (its results.json), joined into the report's principles."""
    from ccai.consultation import principles_report

    summary = principles_report.load_adherence(
        file.file.read(principles_report.MAX_ADHERENCE_BYTES + 1), file.filename or "file"
    )
    judging.settings(db, conversation.id).adherence = json.dumps(summary)
    db.commit()
    return RedirectResponse(f"/admin/c/{conversation.id}/judging?saved=1", status_code=303)
