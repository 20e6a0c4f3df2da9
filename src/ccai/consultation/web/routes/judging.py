"""The judging round's pages: participants judge two anonymised answers; organisers configure and export.

Same patterns as the statement pages: plain forms that work without JavaScript (a POST answers with a
redirect), htmx swapping only the judging panel when loaded, the participant's HMAC CSRF token, the owner's
session token on admin forms, and the votes limiter on judgments. Generating answers and asking the AI judge
run as background tasks after the organiser's request has been answered.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.background import BackgroundTask

from ccai.consultation import chat, jobs, judging, judging_report, principles_report, service
from ccai.consultation.rules import Conflict, NotFound, RuleError
from ccai.consultation.store import Conversation, token_digest
from ccai.consultation.web.deps import (
    ConversationDep,
    CookieTokenDep,
    DbDep,
    Id,
    OwnerFormDep,
    ParticipantFormDep,
    UserDep,
    UserFormDep,
    join,
    limit_votes,
)
from ccai.consultation.web.pages import render
from ccai.consultation.web.routes import chat as chat_routes

router = APIRouter(include_in_schema=False)
Line = Annotated[str, Form(max_length=500)]


def _page(request: Request, db, conversation: Conversation, token: str, name: str = "judging.html", **extra):
    participant = service.find_participant(db, conversation.id, token)
    found = judging.settings(db, conversation.id)
    seed = request.app.state.settings.seed
    digest = token_digest(token)
    state = judging.next_item(db, conversation, participant, digest, seed) if found.enabled else None
    db.rollback()  # (a default settings row is never stored by a participant's page)
    return render(
        request,
        name,
        conversation=conversation,
        participant=participant,
        judging=found,
        round=state,
        screening=service.questions(db, conversation.id, "screening"),
        **extra,
    )


@router.get("/c/{conversation_id}/judge")
def judge_page(request: Request, conversation: ConversationDep, token: CookieTokenDep, db: DbDep):
    return _page(request, db, conversation, token, judged=request.query_params.get("judged"))


@router.post("/c/{conversation_id}/judge")
def judge(
    request: Request,
    conversation: ConversationDep,
    token: ParticipantFormDep,
    db: DbDep,
    prompt: Annotated[int, Form(ge=0, le=2**31 - 1)],
    pair: Annotated[str, Form(max_length=30, pattern=r"^\d+-\d+$")],
    choice: Annotated[str, Form(max_length=10)],
):
    limit_votes(request, token)
    participant = join(request, db, conversation, token)
    partial = "_judging.html" if request.headers.get("hx-request") else "judging.html"
    try:
        judging.judge(db, conversation, participant, prompt, pair, choice, request.app.state.settings.seed)
    except RuleError as exc:
        db.rollback()
        status = 200 if partial == "_judging.html" else exc.status
        return _page(request, db, conversation, token, partial, error=exc, status_code=status)
    db.commit()
    if partial == "_judging.html":
        return _page(request, db, conversation, token, partial, judged=True)
    return RedirectResponse(f"/c/{conversation.id}/judge?judged=1", status_code=303)


@router.get("/c/{conversation_id}/report/judging")
def judging_report_page(request: Request, conversation: ConversationDep, db: DbDep):
    live = jobs.current_report(db, conversation, request.app.state.jobs)

    def build() -> dict:
        report = judging_report.build(db, conversation, live, request.app.state.settings.seed)
        constitution = chat.attached(db, conversation.id)
        finder = chat_routes.finder(request) if constitution is not None else None
        summary = principles_report.stored_adherence(judging.settings(db, conversation.id).adherence)
        adherence, matched = principles_report.match_adherence(summary, constitution)
        groups, principles = principles_report.build(db, conversation, constitution, finder, live, adherence)
        return {
            "report": report,
            "constitution": constitution,
            "principle_groups": groups,
            "principles": principles,
            "adherence": summary,
            "adherence_match": matched,
        }

    key = judging_report.fingerprint(db, conversation, live)
    built = request.app.state.judging_reports.get(key, build)
    db.rollback()
    return render(request, "judging_report.html", conversation=conversation, live=live, **built)


# ---------------------------------------------------------------- organisers


def _admin(conversation_id: int, **query: str) -> RedirectResponse:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return RedirectResponse(f"/admin/c/{conversation_id}/judging{suffix}", status_code=303)


@router.get("/admin/c/{conversation_id}/judging")
def admin_page(request: Request, user: UserDep, conversation: ConversationDep, db: DbDep):
    found = judging.settings(db, conversation.id)
    prompts = judging.prompts(db, conversation.id)
    stored = judging.answers(db, conversation.id)
    models = judging.models(db, conversation.id)
    db.rollback()
    return render(
        request,
        "admin/judging.html",
        conversation=conversation,
        judging=found,
        models=models,
        prompts=prompts,
        stored=stored,
        missing=len(prompts) * len(models) - len(stored),
        running=conversation.id in _jobs(request),
        constitution=chat.attached(db, conversation.id),
        adherence=principles_report.stored_adherence(found.adherence),
    )


@router.post("/admin/c/{conversation_id}/judging/settings")
async def configure(
    request: Request,
    user: OwnerFormDep,
    conversation: ConversationDep,
    db: DbDep,
    max_tokens: Annotated[int, Form(ge=8, le=1024)] = 128,
    judge_spec: Line = "",
):
    form = await request.form()
    judging.configure(
        db,
        conversation,
        enabled=form.get("enabled") == "on",
        chat_public=form.get("chat_public") == "on",
        max_tokens=max_tokens,
        judge_spec=judge_spec,
    )
    db.commit()
    return _admin(conversation.id, saved="1")


@router.post("/admin/c/{conversation_id}/judging/models")
def add_model(
    user: OwnerFormDep, conversation: ConversationDep, db: DbDep, label: Line, base_url: Line, model: Line
):
    judging.add_model(db, conversation, label, base_url, model)
    db.commit()
    return _admin(conversation.id)


@router.post("/admin/c/{conversation_id}/judging/models/{label}/delete")
def remove_model(user: OwnerFormDep, conversation: ConversationDep, db: DbDep, label: str):
    judging.remove_model(db, conversation, label)
    db.commit()
    return _admin(conversation.id)


@router.post("/admin/c/{conversation_id}/judging/prompts")
def add_prompts(
    user: OwnerFormDep,
    conversation: ConversationDep,
    db: DbDep,
    prompts: Annotated[str, Form(max_length=judging.MAX_PROMPTS * (judging.MAX_PROMPT_CHARS + 2))],
):
    added = judging.add_prompts(db, conversation, prompts)
    db.commit()
    return _admin(conversation.id, added=str(len(added)))


def _jobs(request: Request) -> set[int]:
    """Conversations whose background step is running in this worker (one at a time per conversation)."""
    if not hasattr(request.app.state, "judging_jobs"):
        request.app.state.judging_jobs = set()
    return request.app.state.judging_jobs


def _background(request: Request, conversation_id: int, work) -> BackgroundTask:
    jobs = _jobs(request)
    if conversation_id in jobs:
        raise Conflict("busy", "The answers are being generated or judged already; reload the page later.")
    jobs.add(conversation_id)

    def run() -> None:
        sessions = request.app.state.sessions
        try:
            work(sessions, conversation_id)
        except Exception as exc:  # kept for the organiser's page: a background task has nobody to answer
            with sessions() as db:
                judging.settings(db, conversation_id).generating = f"failed: {exc}"[:4000]
                db.commit()
        finally:
            jobs.discard(conversation_id)

    return BackgroundTask(run)


@router.post("/admin/c/{conversation_id}/judging/generate")
def generate(request: Request, user: OwnerFormDep, conversation: ConversationDep, db: DbDep):
    if not judging.missing(db, conversation.id):
        raise RuleError("nothing_missing", "Every model has answered every prompt already.")
    judging.settings(db, conversation.id).generating = "running"
    db.commit()
    seed = request.app.state.settings.seed
    task = _background(
        request, conversation.id, lambda sessions, cid: judging.generate_answers(sessions, cid, seed=seed)
    )
    response = _admin(conversation.id, started="1")
    response.background = task
    return response


@router.post("/admin/c/{conversation_id}/judging/ai-judge")
def ai_judge(request: Request, user: OwnerFormDep, conversation: ConversationDep, db: DbDep):
    cid = conversation.id
    if not judging.settings(db, cid).judge_spec:
        raise RuleError("no_judge", "Name an AI judge (openai:<base_url>#<model>) in the settings first.")
    # End the transaction and touch the session no more: the rollback expires ``conversation``, and reading
    # it again would open a new (on SQLite write-locked) transaction that lasts until the background task
    # below has finished, so the task's own write would wait for it in vain ("database is locked").
    db.rollback()
    response = _admin(cid, started="1")

    def work(sessions, cid):
        message = judging.run_ai_judge(sessions, cid)
        with sessions() as db:
            judging.settings(db, cid).generating = message
            db.commit()

    response.background = _background(request, cid, work)
    return response


@router.post("/admin/c/{conversation_id}/judging/answers/{answer_id}")
def moderate_answer(
    user: UserFormDep,
    conversation: ConversationDep,
    db: DbDep,
    answer_id: Id,
    op: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=1000)] = "",
):
    if op not in ("accept", "reject", "reset"):
        raise RuleError("invalid_action", "op must be accept, reject or reset")
    judging.moderate_answer(db, conversation, answer_id, op, reason)
    db.commit()
    return _admin(conversation.id)


@router.get("/admin/c/{conversation_id}/judgments.csv")
def export(user: UserDep, conversation: ConversationDep, db: DbDep):
    if not judging.models(db, conversation.id):
        raise NotFound("no_judging", "This conversation has no judging round.")
    return Response(
        judging.export_csv(db, conversation.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="judgments-{conversation.id}.csv"'},
    )
