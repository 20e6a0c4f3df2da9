"""The organiser's review of proposed principles: merges, wordings and typo flags of a constitution build.

It reads and writes the build's own ``review.yaml`` (``ccai.constitution.review_file``), so the file and this
page are two views of one review: ``ccai constitution build`` applies either. Which file: the environment
variable ``CCAI_REVIEW_FILE`` of the server (a build's ``OUT/review.yaml``). Owners only; every POST carries
the session's CSRF token.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from ccai.consultation.web.deps import OwnerDep, OwnerFormDep
from ccai.consultation.web.pages import render

router = APIRouter(prefix="/admin/review", include_in_schema=False)


def _path() -> Path | None:
    value = os.environ.get("CCAI_REVIEW_FILE")
    return Path(value) if value else None


def _page(request: Request, status_code: int = 200, edits=None, **extra):
    from ccai.constitution.review_file import load_review

    path = _path()
    if path is None:
        return render(
            request,
            "error.html",
            status_code=404,
            message="No review file: start the server with CCAI_REVIEW_FILE=OUT/review.yaml of a build.",
        )
    _, data = load_review(path)
    merges = [m for m in data["merges"] if isinstance(m, dict)]
    for m in merges:
        m["members"] = [str(x) for x in m.get("members") or []]
        m["texts"] = {str(k): v for k, v in (m.get("texts") or {}).items()}
    wordings = [w for w in data["wordings"] if isinstance(w, dict)]
    if edits is not None:  # a refused save shows what the person typed, not the file's old values
        for m in merges:
            mid = str(m.get("id"))
            m["decision"] = edits.decisions.get(mid, m.get("decision", "accept"))
            m["keep"] = edits.keep.get(mid, m.get("keep"))
            if edits.merge_wordings.get(mid) is not None:
                m["wording"] = edits.merge_wordings[mid]
        for w in wordings:
            if edits.statement_wordings.get(str(w.get("statement"))) is not None:
                w["wording"] = edits.statement_wordings[str(w.get("statement"))]
    return render(
        request,
        "admin/review.html",
        status_code=status_code,
        path=path,
        merges=merges,
        wordings=wordings,
        **extra,
    )


@router.get("")
def review_page(request: Request, user: OwnerDep, saved: str = ""):
    return _page(request, saved=saved)


@router.post("")
async def save_review(request: Request, user: OwnerFormDep):
    from ccai.constitution.model import ConstitutionError
    from ccai.constitution.review_file import ReviewEdits, apply_edits

    path = _path()
    if path is None:
        return _page(request)
    form = await request.form()
    edits = ReviewEdits()
    for key, value in form.items():
        value = str(value)
        if key.startswith("decision_"):
            edits.decisions[key.removeprefix("decision_")] = value
        elif key.startswith("keep_"):
            edits.keep[key.removeprefix("keep_")] = value
        elif key.startswith("mwording_"):
            edits.merge_wordings[key.removeprefix("mwording_")] = value
        elif key.startswith("swording_"):
            edits.statement_wordings[key.removeprefix("swording_")] = value
    try:
        changed = apply_edits(path, edits, by=user.email)
    except ConstitutionError as exc:
        return _page(request, status_code=400, edits=edits, error=str(exc))
    saved = f"{changed['decisions']} decision(s), {changed['wordings']} wording(s) changed"
    return RedirectResponse(f"/admin/review?saved={quote(saved)}", status_code=303)
