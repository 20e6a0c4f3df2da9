"""Owner and moderator pages: conversations, configuration, seeds, questions, allow-list, moderation queue.

Owners create and configure conversations; moderators (and owners) seed and moderate statements.
Every POST carries the session's CSRF token (``UserFormDep`` / ``OwnerFormDep`` check it).
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse
from starlette.background import BackgroundTask

from ccai.consultation import accounts, exchange, service
from ccai.consultation.rules import Moderation, RuleError
from ccai.consultation.store import Conversation
from ccai.consultation.web.deps import ConversationDep, DbDep, Id, OwnerFormDep, UserDep, UserFormDep
from ccai.consultation.web.pages import render

router = APIRouter(prefix="/admin", include_in_schema=False)
TABS = {"pending": Moderation.PENDING, "accepted": Moderation.ACCEPTED, "rejected": Moderation.REJECTED}
CHECKBOXES = (
    "is_open",
    "strict_moderation",
    "seed_first",
    "xid_required",
    "use_xid_allowlist",
    "is_private",
    "is_archived",
)
Text = Annotated[str, Form(max_length=20_000)]


def _to(path: str, **query: str) -> RedirectResponse:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return RedirectResponse(path + suffix, status_code=303)


@router.get("")
def dashboard(request: Request, user: UserDep, db: DbDep):
    query = sa.select(Conversation).order_by(Conversation.id.desc())
    if user.role == "member":  # a moderator of some conversations sees those only
        query = query.where(Conversation.id.in_(accounts.granted(db, user) or {-1}))
    conversations = db.scalars(query).all()
    return render(request, "admin/index.html", conversations=conversations)


@router.post("/conversations")
def create(
    user: OwnerFormDep,
    db: DbDep,
    topic: Annotated[str, Form(max_length=300)],
    description: Text = "",
    consent_text: Text = "",
):
    conversation = service.create_conversation(
        db, user, {"topic": topic, "description": description, "consent_text": consent_text}
    )
    db.commit()
    return _to(f"/admin/c/{conversation.id}")


@router.get("/c/{conversation_id}")
def settings_page(request: Request, user: UserDep, conversation: ConversationDep, db: DbDep):
    return _settings(request, conversation, db)


def _settings(request: Request, conversation: Conversation, db, status_code: int = 200, **context):
    """The conversation's admin page; a refused form on it passes its error and draft in ``context``."""
    context.setdefault("question_error", None)
    context.setdefault(
        "question_draft", {"kind": "screening", "text": "", "choices": "", "eligible_choices": ""}
    )
    counts = dict(
        db.execute(
            sa.select(service.Statement.moderation, sa.func.count())
            .where(service.Statement.conversation_id == conversation.id)
            .group_by(service.Statement.moderation)
        ).all()
    )
    allow = db.scalars(
        sa.select(service.XidAllowed.xid).where(service.XidAllowed.conversation_id == conversation.id)
    )
    return render(
        request,
        "admin/conversation.html",
        status_code=status_code,
        conversation=conversation,
        counts=counts,
        questions=service.questions(db, conversation.id),
        allowlist="\n".join(allow),
        embed=_embed_snippet(request, conversation),
        available=service.available_count(db, conversation),
        stats=service.dashboard(db, conversation),
        moderators=accounts.conversation_moderators(db, conversation.id),
        members=[u for u in accounts.list_users(db) if u.role == "member"],
        **context,
    )


def _embed_snippet(request: Request, conversation: Conversation) -> str:
    """What an embedding site pastes: a script that adds an iframe growing with its content (participant
    pages allow any frame ancestor), then the plain iframe for sites that allow no scripts. The address is
    the configured public URL; the request's Host header only when none is set (the page says so)."""
    base = request.app.state.settings.public_url or str(request.base_url).rstrip("/")
    title = html.escape(conversation.topic, quote=True)
    return (
        f'<script src="{base}/static/embed.js" data-conversation="{conversation.id}" data-xid="USER_ID" '
        f'data-title="{title}" async></script>\n'
        f'<noscript><iframe src="{base}/c/{conversation.id}?xid=USER_ID" title="{title}" '
        'style="width:100%;height:760px;border:0"></iframe></noscript>'
    )


@router.post("/c/{conversation_id}/config")
async def configure(
    request: Request,
    user: OwnerFormDep,
    conversation: ConversationDep,
    db: DbDep,
    topic: Annotated[str, Form(max_length=300)],
    description: Text = "",
    consent_text: Text = "",
    unlock_threshold: Annotated[int, Form(ge=0, le=10_000)] = 30,
    max_length: Annotated[int, Form(ge=20, le=1000)] = 280,
):
    form = await request.form()
    values = {
        "topic": topic,
        "description": description,
        "consent_text": consent_text,
        "unlock_threshold": unlock_threshold,
        "max_length": max_length,
    }
    values |= {name: form.get(name) == "on" for name in CHECKBOXES}
    service.configure(conversation, values)
    db.commit()
    return _to(f"/admin/c/{conversation.id}", saved="1")


@router.post("/c/{conversation_id}/seeds")
def seed(
    user: UserFormDep,
    conversation: ConversationDep,
    db: DbDep,
    text: Annotated[str, Form(max_length=5000)],
    is_meta: Annotated[bool, Form()] = False,
):
    statement = service.add_seed(db, conversation, text, is_meta)
    db.commit()
    return _to(f"/admin/c/{conversation.id}", seeded=str(statement.number))


@router.post("/c/{conversation_id}/seeds.csv")
def seed_csv(request: Request, user: UserFormDep, conversation: ConversationDep, db: DbDep, file: UploadFile):
    report = service.seed_from_csv(db, conversation, file.file.read())
    db.commit()
    return render(request, "admin/seed_report.html", conversation=conversation, report=report)


@router.post("/c/{conversation_id}/questions")
def add_question(
    request: Request,
    user: OwnerFormDep,
    conversation: ConversationDep,
    db: DbDep,
    kind: Annotated[str, Form(max_length=20)] = "",
    text: Text = "",
    choices: Text = "",
    eligible_choices: Text = "",
):
    try:
        service.add_question(db, conversation, kind, text, choices, eligible_choices)
    except RuleError as exc:  # the page again: message above the form, the field marked, the draft kept
        db.rollback()
        draft = {"kind": kind, "text": text, "choices": choices, "eligible_choices": eligible_choices}
        return _settings(request, conversation, db, exc.status, question_error=exc, question_draft=draft)
    db.commit()
    return _to(f"/admin/c/{conversation.id}")


@router.post("/c/{conversation_id}/allowlist")
def allowlist(user: OwnerFormDep, conversation: ConversationDep, db: DbDep, xids: Text = ""):
    service.set_allowlist(db, conversation, xids.splitlines())
    db.commit()
    return _to(f"/admin/c/{conversation.id}")


@router.get("/c/{conversation_id}/moderate")
def moderation_queue(
    request: Request,
    user: UserDep,
    conversation: ConversationDep,
    db: DbDep,
    tab: str = "pending",
    page: Annotated[int, Query(ge=0, le=100_000)] = 0,
):
    if tab not in TABS:
        raise RuleError("invalid_field", f"tab must be one of {sorted(TABS)}")
    items, total = service.queue(db, conversation.id, TABS[tab], page)
    finder = request.app.state.finder if tab == "pending" else None  # near-duplicate hints for new ones
    hints = service.similar_hints(db, conversation, items, finder)
    db.commit()  # vectors computed for the first time are kept (statement_vectors)
    return render(
        request,
        "admin/moderate.html",
        conversation=conversation,
        tab=tab,
        tabs=list(TABS),
        items=items,
        total=total,
        page=page,
        pages=(total + 49) // 50,
        hints=hints,
        by_id=dict(
            db.execute(
                sa.select(service.Statement.id, service.Statement.number).where(
                    service.Statement.id.in_([s.duplicate_of for s in items if s.duplicate_of])
                )
            ).all()
        ),
    )


@router.post("/c/{conversation_id}/statements/{number}")
def moderate(
    user: UserFormDep,
    conversation: ConversationDep,
    db: DbDep,
    number: Id,
    op: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=1000)] = "",
    text: Annotated[str, Form(max_length=5000)] = "",
    duplicate_of: Annotated[str, Form(max_length=20)] = "",
    tab: Annotated[str, Form(max_length=20)] = "pending",
):
    statement = service.statement_by_number(db, conversation.id, number)
    if op in ("accept", "reject", "reset"):
        service.moderate(db, user, statement, op, reason)
    elif op == "rewrite":
        service.rewrite(db, user, statement, text, conversation.max_length)
    elif op == "duplicate":
        target = duplicate_of.strip()
        if target and not target.isdigit():
            raise RuleError("invalid_field", "duplicate_of must be a statement number")
        service.mark_duplicate(db, statement, int(target) if target else None)
    elif op == "meta":
        service.toggle_meta(db, statement)
    else:
        raise RuleError("invalid_action", "op must be accept, reject, reset, rewrite, duplicate or meta")
    db.commit()
    return _to(f"/admin/c/{conversation.id}/moderate", tab=tab if tab in TABS else "pending")


@router.get("/c/{conversation_id}/export.zip")
def export(user: UserDep, conversation: ConversationDep, db: DbDep):
    folder = tempfile.mkdtemp(prefix="ccai-export-")
    path = exchange.export_zip(db, conversation, Path(folder) / f"conversation-{conversation.id}.zip")
    return FileResponse(
        path,
        media_type="application/zip",
        filename=path.name,
        background=BackgroundTask(_remove, Path(folder)),
    )


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
