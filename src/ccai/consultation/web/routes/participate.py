"""Participant pages: the conversation, screening, one statement at a time, writing a statement.

Plain HTML forms that work without JavaScript (each POST answers with a redirect back to the page);
with htmx loaded, the vote form swaps only the voting panel.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from ccai.consultation import service
from ccai.consultation.store import Conversation
from ccai.consultation.web.deps import ConversationDep, CookieTokenDep, DbDep, ParticipantFormDep
from ccai.consultation.web.pages import render

router = APIRouter(include_in_schema=False)


def _back(conversation_id: int, **query: str) -> RedirectResponse:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return RedirectResponse(f"/c/{conversation_id}{suffix}", status_code=303)


def _page(
    request: Request, db, conversation: Conversation, token: str, name: str = "conversation.html", **extra
):
    participant = service.find_participant(db, conversation.id, token)
    state = service.progress(db, conversation, participant, request.app.state.settings.seed)
    return render(
        request,
        name,
        conversation=conversation,
        participant=participant,
        state=state,
        screening=service.questions(db, conversation.id, "screening"),
        demographics=service.questions(db, conversation.id, "demographic"),
        answered=service.answered(db, participant.id) if participant else set(),
        **extra,
    )


@router.get("/")
def index(request: Request, db: DbDep):
    order = (Conversation.is_open.desc(), Conversation.id.desc())
    conversations = db.scalars(sa.select(Conversation).order_by(*order).limit(200)).all()
    return render(request, "index.html", conversations=conversations)


@router.get("/c/{conversation_id}")
def conversation_page(
    request: Request, conversation: ConversationDep, token: CookieTokenDep, db: DbDep, xid: str | None = None
):
    if xid is not None:  # an embedding site passes its own user id
        service.join(db, conversation, token, xid)
        db.commit()
    return _page(request, db, conversation, token, added=request.query_params.get("added"))


@router.post("/c/{conversation_id}/answers")
async def answer(request: Request, conversation: ConversationDep, token: ParticipantFormDep, db: DbDep):
    form = await request.form()
    answers = {int(k[1:]): str(v) for k, v in form.items() if k.startswith("q") and k[1:].isdigit() and v}
    participant = service.join(db, conversation, token)
    service.answer_questions(db, conversation, participant, answers)
    db.commit()
    return _back(conversation.id)


@router.post("/c/{conversation_id}/vote")
def vote(
    request: Request,
    conversation: ConversationDep,
    token: ParticipantFormDep,
    db: DbDep,
    statement: Annotated[int, Form(ge=0, le=2**31 - 1)],
    vote: Annotated[int, Form(ge=-1, le=1)],
    important: Annotated[bool, Form()] = False,
):
    participant = service.join(db, conversation, token)
    service.cast_vote(db, conversation, participant, statement, vote, important)
    db.commit()
    if request.headers.get("hx-request"):
        return _page(request, db, conversation, token, "_participate.html")
    return _back(conversation.id)


@router.post("/c/{conversation_id}/statements")
def submit(
    request: Request,
    conversation: ConversationDep,
    token: ParticipantFormDep,
    db: DbDep,
    text: Annotated[str, Form(max_length=5000)],
    confirm: Annotated[bool, Form()] = False,
):
    participant = service.join(db, conversation, token)
    if not confirm:
        similar = service.similar_texts(db, conversation, text, request.app.state.finder)
        if similar:
            return _page(request, db, conversation, token, similar=similar, draft=text)
    service.submit_statement(db, conversation, participant, text)
    db.commit()
    return _back(conversation.id, added="1")
