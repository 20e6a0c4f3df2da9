"""A lean ASGI path for the one request that comes by the thousand: a well-formed API vote.

FastAPI's routing, dependency solving and validation cost about a millisecond of CPU per request, more
than the vote's single INSERT. This middleware answers ``POST /api/v1/conversations/{id}/votes`` itself
when the request is the ordinary case (JSON, Content-Length at most 4 KiB, a bearer token, a body that
passes the same ``VoteIn`` model), calling the same ``service.record_vote``. Everything else (bad
bodies, missing tokens, other content types) is handed, body replayed, to the FastAPI route, so error
messages and the OpenAPI description live in one place. ``WebSettings.fast_votes=False`` turns it off.
"""

from __future__ import annotations

import json
import re

import anyio
from pydantic import ValidationError

from ccai.consultation import service
from ccai.consultation.rules import RuleError

PATH = re.compile(r"^/api/v1/conversations/(\d{1,9})/votes$")
MAX_BODY = 4096


class VoteFastPath:
    def __init__(self, app, engine, model):
        self.app, self.engine, self.model = app, engine, model

    async def __call__(self, scope, receive, send):
        match = PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        auth = headers.get(b"authorization", b"")
        plain_json = headers.get(b"content-type", b"").split(b";")[0].strip() == b"application/json"
        if not (
            plain_json and length.isdigit() and int(length) <= MAX_BODY and auth[:7].lower() == b"bearer "
        ):
            return await self.app(scope, receive, send)
        body = await _read(receive, int(length))
        token = auth[7:].decode("latin-1").strip()
        try:
            vote = self.model.model_validate_json(body)
        except ValidationError:
            vote = None
        if vote is None or not token or len(token) > 64:  # let the full route explain what is wrong
            return await self.app(scope, _replay(body, receive), send)
        try:
            vote_id = await anyio.to_thread.run_sync(
                service.record_vote,
                self.engine,
                int(match.group(1)),
                token,
                vote.statement,
                vote.vote,
                vote.important,
            )
        except RuleError as exc:
            return await _json(send, exc.status, {"detail": exc.message, "code": exc.code})
        await _json(send, 201, {"id": vote_id})


async def _read(receive, length: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body") or size > length:
            return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
