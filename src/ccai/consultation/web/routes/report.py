"""The public live report page of a conversation (computed by ``ccai.analysis`` in a background job:
``jobs.py``; these pages only read the kept report)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ccai.consultation import jobs, live_report, service
from ccai.consultation.web.deps import ConversationDep, CookieTokenDep, DbDep
from ccai.consultation.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/c/{conversation_id}/report")
def report_page(request: Request, conversation: ConversationDep, db: DbDep):
    report = jobs.current_report(db, conversation, request.app.state.jobs)
    return render(request, "report.html", conversation=conversation, report=report, size=live_report.MAP_SIZE)


MIN_VOTES = 7  # Polis places a participant on the map after 7 votes


@router.get("/c/{conversation_id}/me")
def where_i_stand(request: Request, conversation: ConversationDep, token: CookieTokenDep, db: DbDep):
    """A participant's own place: their point on the opinion map, their group's representative statements."""
    participant = service.find_participant(db, conversation.id, token)
    votes = len(service.seen_ids(db, participant.id)) if participant else 0
    report = jobs.current_report(db, conversation, request.app.state.jobs)
    me = report.positions.get(participant.number) if participant else None
    group = next((g for g in report.groups if me and g["name"] == me[3]), None)
    return render(
        request,
        "me.html",
        conversation=conversation,
        report=report,
        size=live_report.MAP_SIZE,
        me=me,
        group=group,
        votes=votes,
        needed=max(0, MIN_VOTES - votes),
    )
