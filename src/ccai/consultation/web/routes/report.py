"""The public live report page of a conversation (computed by ``ccai.analysis``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ccai.consultation import live_report
from ccai.consultation.web.deps import ConversationDep, DbDep
from ccai.consultation.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/c/{conversation_id}/report")
def report_page(request: Request, conversation: ConversationDep, db: DbDep):
    state = request.app.state
    report = live_report.build(db, conversation, state.report_cache, state.settings.seed)
    return render(request, "report.html", conversation=conversation, report=report, size=live_report.MAP_SIZE)
