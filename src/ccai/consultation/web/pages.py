"""Template rendering: one Jinja environment, the UI catalogue, Markdown sanitised with nh3, CSRF tokens.

Templates auto-escape everything; the only HTML that reaches a page unescaped is the conversation
description after Markdown -> HTML -> nh3 (an allow-list sanitiser), via the ``markdown`` filter.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from pathlib import Path
from urllib.parse import quote

import markdown as md
import nh3
from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from ccai.consultation.web import i18n

templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))


def render_markdown(text: str) -> Markup:
    html = md.markdown(text or "", extensions=["sane_lists"])
    return Markup(nh3.clean(html, link_rel="noopener noreferrer nofollow"))


templates.env.filters["markdown"] = render_markdown
templates.env.filters["day"] = lambda ms: time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


def sign(secret: str, value: str) -> str:
    """HMAC of ``value``: a participant's CSRF token is the signature of their cookie token."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:40]


def queue_cookie(request: Request, name: str, value: str, **options) -> None:
    """Set a cookie on whatever response the handler returns (the app's middleware applies the queue)."""
    if not hasattr(request.state, "cookies"):
        request.state.cookies = []
    request.state.cookies.append((name, value, options))


def language(request: Request) -> str:
    return i18n.pick_language(
        request.query_params.get("lang"),
        request.cookies.get("ccai_lang"),
        request.headers.get("accept-language"),
    )


def page_path(request: Request) -> str:
    """The page a language link should come back to: this one for a GET, else the page the form was on
    (a link back to a POST address would answer 405)."""
    if request.method == "GET":
        query = "&".join(f"{k}={v}" for k, v in request.query_params.multi_items() if k != "lang")
        return request.url.path + ("?" + query if query else "")
    return back_link(request.url.path)


def back_link(path: str) -> str:
    """Where a refused form sends people back to: its conversation (participant or admin page), else home."""
    match = re.match(r"^(/admin)?/c/(\d+)|^/admin/users", path)
    return match.group(0) if match else ("/admin" if path.startswith("/admin") else "/")


def render(request: Request, name: str, status_code: int = 200, headers: dict | None = None, **context):
    lang = language(request)
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    context.setdefault("here", quote(page_path(request), safe="/"))
    context.setdefault("err", lambda exc: i18n.error_text(lang, exc.code, exc.message, exc.values))
    response = templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "languages": i18n.languages(),
            "t": lambda key, **v: i18n.translate(lang, key, **v),
            **context,
        },
        status_code=status_code,
        headers=headers,
    )
    if request.query_params.get("lang") in i18n.languages():
        response.set_cookie("ccai_lang", lang, max_age=365 * 86400, httponly=True, samesite="lax")
    return response


def error_page(
    request: Request,
    status: int,
    code: str,
    message: str,
    values: dict | None = None,
    headers: dict | None = None,
):
    """The HTML answer to a refusal: what happened in the reader's language, and a way back."""
    text = i18n.error_text(language(request), code, message, values)
    back = back_link(request.url.path)
    return render(
        request, "error.html", status_code=status, headers=headers, message=text, back=back, code=code
    )
