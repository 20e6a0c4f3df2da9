"""Participant pages: the conversation, screening, one statement at a time, writing a statement.

Plain HTML forms that work without JavaScript (each POST answers with a redirect back to the page);
with htmx loaded, the vote form swaps only the voting panel.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from ccai.consultation import judging, service
from ccai.consultation.rules import NotFound, RuleError
from ccai.consultation.store import Conversation
from ccai.consultation.web import i18n
from ccai.consultation.web.deps import (
    ConversationDep,
    CookieTokenDep,
    DbDep,
    ParticipantFormDep,
    join,
    limit_statements,
    limit_votes,
    statement_cap,
)
from ccai.consultation.web.pages import render

router = APIRouter(include_in_schema=False)


def _back(conversation_id: int, **query: str) -> RedirectResponse:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return RedirectResponse(f"/c/{conversation_id}{suffix}", status_code=303)


def _page(
    request: Request, db, conversation: Conversation, token: str, name: str = "conversation.html", **extra
):
    participant = service.find_participant(db, conversation.id, token)
    state = service.progress(
        db, conversation, participant, request.app.state.settings.seed, request.app.state.routing
    )
    return render(
        request,
        name,
        conversation=conversation,
        participant=participant,
        state=state,
        screening=service.questions(db, conversation.id, "screening"),
        demographics=service.questions(db, conversation.id, "demographic"),
        answered=service.answered(db, participant.id) if participant else set(),
        judging_links=judging.links(db, conversation.id),
        **extra,
    )


@router.get("/")
def index(request: Request, db: DbDep):
    return render(request, "index.html", conversations=service.listed_conversations(db))


@router.get("/lang/{code}")
def switch_language(code: str, next: str = "/"):
    """A plain GET link that remembers the language and returns to the page (safe on any page, even
    an error page answering a POST, where a ``?lang=`` link would have pointed at the form's address)."""
    if code not in i18n.languages():
        raise NotFound("not_found", f"No language {code!r}; choose one of {i18n.languages()}.")
    target = next if next.startswith("/") and not next.startswith("//") and "\\" not in next else "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie("ccai_lang", code, max_age=365 * 86400, httponly=True, samesite="lax")
    return response


@router.get("/c/{conversation_id}")
def conversation_page(
    request: Request, conversation: ConversationDep, token: CookieTokenDep, db: DbDep, xid: str | None = None
):
    if xid is not None and conversation.is_open:  # an embedding site passes its own user id
        join(request, db, conversation, token, xid)
        db.commit()
    query = request.query_params
    return _page(request, db, conversation, token, added=query.get("added"), voted=query.get("voted"))


@router.post("/c/{conversation_id}/answers")
async def answer(request: Request, conversation: ConversationDep, token: ParticipantFormDep, db: DbDep):
    form = await request.form()
    answers = {int(k[1:]): str(v) for k, v in form.items() if k.startswith("q") and k[1:].isdigit() and v}
    participant = join(request, db, conversation, token)
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
    limit_votes(request, token)
    participant = join(request, db, conversation, token)
    partial = "_participate.html" if request.headers.get("hx-request") else "conversation.html"
    try:
        service.cast_vote(db, conversation, participant, statement, vote, important)
    except RuleError as exc:  # e.g. the statement was rejected meanwhile: say so beside the next one
        db.rollback()
        status = 200 if partial == "_participate.html" else exc.status  # htmx swaps only 2xx answers
        return _page(request, db, conversation, token, partial, error=exc, status_code=status)
    db.commit()
    if partial == "_participate.html":
        return _page(request, db, conversation, token, partial, voted=True)
    return _back(conversation.id, voted="1")


@router.post("/c/{conversation_id}/statements")
def submit(
    request: Request,
    conversation: ConversationDep,
    token: ParticipantFormDep,
    db: DbDep,
    text: Annotated[str, Form(max_length=5000)],
    confirm: Annotated[bool, Form()] = False,
):
    participant = join(request, db, conversation, token)
    if not confirm:
        similar = service.similar_texts(db, conversation, text, request.app.state.finder)
        db.commit()  # (vectors embedded for the first time)
        if similar:
            return _page(request, db, conversation, token, similar=similar, draft=text)
    try:
        limit_statements(request, token)
        service.submit_statement(db, conversation, participant, text, statement_cap(request))
    except RuleError as exc:  # shown beside the form, with the draft kept
        db.rollback()
        return _page(request, db, conversation, token, error=exc, draft=text, status_code=exc.status)
    db.commit()
    return _back(conversation.id, added="1")
