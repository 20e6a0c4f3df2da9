"""The JSON API (``/api/v1``, documented at ``/openapi.json``): what a participant does, and the results.

A participant joins once (``POST .../participants``) and sends the returned token as a bearer header;
the API never reads cookies, so it needs no CSRF token. Same service functions as the HTML pages.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from ccai.consultation import rules, service
from ccai.consultation.web import deps
from ccai.consultation.web.deps import (
    ApiParticipantDep,
    ApiTokenDep,
    ConversationDep,
    DbDep,
    EngineDep,
    Id,
)

router = APIRouter(prefix="/api/v1", tags=["participants"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConversationPublic(BaseModel):
    id: int
    topic: str
    description: str
    consent_text: str
    is_open: bool
    unlock_threshold: int
    max_length: int


class Join(Strict):
    xid: Annotated[str | None, Field(max_length=200)] = None


class Joined(BaseModel):
    token: str = Field(description="send as 'Authorization: Bearer <token>'; it is shown only once")
    participant: int
    eligible: bool | None


class StatementPublic(BaseModel):
    id: int = Field(description="the statement's number in the conversation (the Polis comment id)")
    text: str
    is_meta: bool = False


class Next(BaseModel):
    statement: StatementPublic | None
    remaining: int
    votes_cast: int
    can_write: bool
    votes_to_unlock: int


class VoteIn(Strict):
    statement: StrictInt = Field(ge=0, le=2**31 - 1)
    vote: StrictInt = Field(description="1 agree, -1 disagree, 0 pass")
    important: StrictBool = False


class VoteOut(BaseModel):
    id: int


class StatementIn(Strict):
    text: Annotated[str, Field(min_length=1, max_length=5000)]


class Answers(Strict):
    answers: dict[int, Annotated[str, Field(max_length=300)]]


class Eligibility(BaseModel):
    eligible: bool


class Similar(BaseModel):
    statement: StatementPublic
    similarity: float


class StatementResult(StatementPublic):
    agree: int
    disagree: int
    passes: int
    seen: int
    moderated: int


def _public(statement) -> StatementPublic:
    return StatementPublic(id=statement.number, text=statement.text, is_meta=statement.is_meta)


@router.get("/conversations/{conversation_id}", response_model=ConversationPublic)
def conversation(conversation: ConversationDep):
    return ConversationPublic.model_validate(conversation, from_attributes=True)


@router.post("/conversations/{conversation_id}/participants", response_model=Joined, status_code=201)
def join(request: Request, conversation: ConversationDep, db: DbDep, body: Join | None = None):
    token = service.new_token()
    participant = deps.join(request, db, conversation, token, body.xid if body else None)
    db.commit()
    return Joined(token=token, participant=participant.number, eligible=participant.eligible)


@router.post("/conversations/{conversation_id}/answers", response_model=Eligibility)
def answer(conversation: ConversationDep, participant: ApiParticipantDep, db: DbDep, body: Answers):
    eligible = service.answer_questions(db, conversation, participant, body.answers)
    db.commit()
    return Eligibility(eligible=eligible)


@router.get("/conversations/{conversation_id}/next", response_model=Next)
def next_statement(
    request: Request, conversation: ConversationDep, participant: ApiParticipantDep, db: DbDep
):
    service.require_eligible(participant)
    state = service.progress(
        db, conversation, participant, request.app.state.settings.seed, request.app.state.routing
    )
    return Next(
        statement=_public(state.statement) if state.statement else None,
        remaining=state.remaining,
        votes_cast=state.votes_cast,
        can_write=state.can_write,
        votes_to_unlock=state.votes_to_unlock,
    )


@router.post("/conversations/{conversation_id}/votes", response_model=VoteOut, status_code=201)
def vote(request: Request, conversation_id: Id, token: ApiTokenDep, engine: EngineDep, body: VoteIn):
    deps.limit_votes(request, token)
    vote_id = service.record_vote(engine, conversation_id, token, body.statement, body.vote, body.important)
    return VoteOut(id=vote_id)


@router.post("/conversations/{conversation_id}/statements", response_model=StatementPublic, status_code=201)
def submit(
    request: Request,
    conversation: ConversationDep,
    participant: ApiParticipantDep,
    token: ApiTokenDep,
    db: DbDep,
    body: StatementIn,
):
    deps.limit_statements(request, token)
    statement = service.submit_statement(
        db, conversation, participant, body.text, deps.statement_cap(request)
    )
    db.commit()
    return _public(statement)


@router.post("/conversations/{conversation_id}/similar", response_model=list[Similar])
def similar(request: Request, conversation: ConversationDep, db: DbDep, body: StatementIn):
    found = service.similar_texts(db, conversation, body.text, request.app.state.finder)
    db.commit()  # (vectors embedded for the first time)
    return [Similar(statement=_public(s), similarity=round(score, 4)) for s, score in found]


@router.get(
    "/conversations/{conversation_id}/results", response_model=list[StatementResult], tags=["results"]
)
def results(conversation: ConversationDep, db: DbDep):
    counts = service.tallies(db, conversation.id)
    return [
        StatementResult(
            id=s.number,
            text=s.text,
            is_meta=s.is_meta,
            moderated=s.moderation,
            agree=(c := counts.get(s.id, (0, 0, 0)))[0],
            disagree=c[1],
            passes=c[2] - c[0] - c[1],
            seen=c[2],
        )
        for s in service.statements(db, conversation.id)
        if rules.visible(s.moderation, conversation.strict_moderation)  # strict: reviewed ones only
    ]
