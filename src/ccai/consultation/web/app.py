"""The FastAPI application factory: settings, database, templates, routes, error pages, headers.

``create_app(WebSettings.from_env())`` is what ``ccai serve`` runs; tests build it with their own engine
URL. The schema is brought up to date by Alembic at start-up (one statement per table when already current).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import sessionmaker
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from ccai.consultation import accounts, jobs, judging_report, store
from ccai.consultation.counters import make_log
from ccai.consultation.limits import Limits, RateLimiter
from ccai.consultation.routing import RoutingCache
from ccai.consultation.rules import RuleError
from ccai.consultation.web import apidocs, pages
from ccai.consultation.web.deps import NeedLogin
from ccai.consultation.web.fastnext import NextFastPath
from ccai.consultation.web.fastvote import VoteFastPath
from ccai.consultation.web.routes import (
    admin,
    api,
    auth,
    chat,
    judging,
    organise,
    participate,
    report,
    review,
    users,
)

MAX_BODY = 2 * 1024 * 1024  # bytes; the seed CSV upload is the largest legitimate body


@dataclass
class WebSettings:
    """Everything the app needs to start; ``from_env`` reads DATABASE_URL / CCAI_SECRET_KEY / CCAI_HOME /
    CCAI_REDIS_URL."""

    database_url: str
    secret_key: str
    near_duplicates: bool = True  # load the bundled MiniLM for near-duplicate hints
    seed: int = 0  # routing RNG seed
    secure_cookies: bool = False  # set when served over HTTPS
    migrate: bool = True
    fast_votes: bool = True  # answer well-formed API votes without FastAPI's routing (web/fastvote.py)
    vote_connections: int = 4  # per worker, fast vote path on PostgreSQL (2 cores: 4 did as well as 8 or 16)
    public_url: str = ""  # e.g. https://consult.example.org: embed snippets name it, not the request's Host
    routing_cache: bool = True  # False: recount every vote per next-statement request (as before issue 11)
    fast_next: bool = True  # answer API next-statement requests without FastAPI (web/fastnext.py)
    limits: Limits = field(default_factory=Limits.from_env)  # joins, votes, statements (limits.py)
    # several server processes on one PostgreSQL: Redis keeps the limits' counts (counters.py) and the
    # live-report job queue (jobs.py) for all of them; empty: this process's memory and a thread
    redis_url: str = ""
    redis_prefix: str = "ccai"  # Redis key prefix and queue name suffix (several apps on one Redis)

    @classmethod
    def from_env(cls, home: Path | None = None, **overrides) -> WebSettings:
        """SQLite in ``$CCAI_HOME`` (default ~/.local/share/ccai) unless DATABASE_URL is set."""
        home = Path(home or os.environ.get("CCAI_HOME") or Path.home() / ".local/share/ccai").expanduser()
        url = os.environ.get("DATABASE_URL") or store.default_url(home)
        secret = os.environ.get("CCAI_SECRET_KEY") or _secret_file(home)
        overrides.setdefault("redis_url", os.environ.get("CCAI_REDIS_URL", ""))
        overrides.setdefault("redis_prefix", os.environ.get("CCAI_REDIS_PREFIX", "ccai"))
        return cls(database_url=url, secret_key=secret, **overrides)


def _secret_file(home: Path) -> str:
    """A random key kept in the data directory, so sessions survive restarts without configuration."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors "


class SecurityHeaders:
    """CSP and friends on every response, plus the cookies handlers queued (``pages.queue_cookie``).

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs a task and a stream per request,
    which the vote endpoint cannot afford.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        framing = (
            b"'none'" if scope["path"].startswith(("/admin", "/login", "/api/docs", "/invite/")) else b"*"
        )

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP + framing.decode()
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                state = scope.get("state") or {}
                cookies = state.get("cookies") if isinstance(state, dict) else getattr(state, "cookies", None)
                for name, value, options in cookies or ():
                    headers.append("set-cookie", _cookie_header(name, value, options))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie_header(name: str, value: str, options: dict) -> str:
    """A Set-Cookie value; ``partitioned`` (CHIPS) is added by hand (Starlette needs Python 3.14 for it)."""
    options = dict(options)
    partitioned = options.pop("partitioned", False)
    carrier = Response()
    carrier.set_cookie(name, value, **options)
    return carrier.headers["set-cookie"] + ("; Partitioned" if partitioned else "")


def _wants_json(request: Request) -> bool:
    """JSON for the API and for clients that ask for it; every browser gets an HTML page."""
    if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 429: "too_many"}


def create_app(settings: WebSettings) -> FastAPI:
    app = FastAPI(
        title="ccai consultation",
        version="1",
        summary="Polis-style public input: vote, submit, results.",
        docs_url=None,  # our own page below (apidocs.py): FastAPI's loads Swagger UI from a CDN
        max_body_size=MAX_BODY,  # 413 above it, with or without Content-Length
        redoc_url=None,
    )
    engine = store.make_engine(settings.database_url)
    if settings.migrate:
        store.migrate(engine)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    app.state.finder = None
    if settings.near_duplicates:
        from ccai.consultation.similar import NearDuplicateFinder

        app.state.finder = NearDuplicateFinder()
    # counts that every process must share (login failures, rate limits), salted alike in every process
    counts = make_log(settings.redis_url, settings.redis_prefix)
    salt = hashlib.sha256(f"ccai-limits:{settings.secret_key}".encode()).digest()
    app.state.login_limiter = accounts.LoginLimiter(log=counts, salt=salt)
    app.state.limiter = RateLimiter(settings.limits, log=counts, salt=salt)
    queue_name = jobs.queue_name(settings.redis_prefix)
    app.state.jobs = jobs.make_queue(
        settings.database_url, settings.redis_url, settings.seed, queue_name, settings.near_duplicates
    )
    # next-statement tallies kept per worker (routing.py); off: every request recounts (the bench's baseline)
    app.state.routing = RoutingCache() if settings.routing_cache else None
    app.state.judging_reports = judging_report.ReportCache()  # built reports by their inputs

    _add_error_pages(app)
    if settings.fast_votes:
        app.add_middleware(
            VoteFastPath,
            engine=engine,
            model=api.VoteIn,
            connections=settings.vote_connections,
            limiter=app.state.limiter,
        )
    if settings.fast_next and app.state.routing is not None:
        app.add_middleware(
            NextFastPath,
            engine=engine,
            cache=app.state.routing,
            seed=settings.seed,
            connections=settings.vote_connections,
        )
    app.add_middleware(SecurityHeaders)  # added last: outermost, so fast answers get the headers too
    app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")

    @app.get("/api/docs", include_in_schema=False)
    def api_docs(request: Request):
        return pages.render(request, "api_docs.html", operations=apidocs.operations(app.openapi()))

    # api first: its vote endpoint must match before the pages' routes
    for module in (api, participate, auth, users, organise, admin, report, judging, chat, review):
        app.include_router(module.router)
    return app


def _add_error_pages(app: FastAPI) -> None:
    """Refusals as ``{"detail", "code"}`` JSON under /api/, elsewhere an error page or a login redirect."""

    @app.exception_handler(RuleError)
    async def rule_error(request: Request, exc: RuleError) -> Response:
        headers = {"Retry-After": str(exc.values["wait"])} if "wait" in exc.values else None
        if _wants_json(request):
            return JSONResponse(
                {"detail": exc.message, "code": exc.code}, status_code=exc.status, headers=headers
            )
        return pages.error_page(request, exc.status, exc.code, exc.message, exc.values, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        if _wants_json(request):
            return JSONResponse(
                {"detail": exc.detail, "code": code}, status_code=exc.status_code, headers=exc.headers
            )
        return pages.error_page(request, exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, exc: NeedLogin) -> Response:
        if _wants_json(request) or request.method != "GET":
            return JSONResponse({"detail": "log in first", "code": "login_required"}, status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "problem": e["msg"]}
            for e in exc.errors()
        ]
        if _wants_json(request):
            return JSONResponse({"detail": problems, "code": "invalid_request"}, status_code=422)
        message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return pages.error_page(request, 422, "invalid_request", message, {"detail": message})
