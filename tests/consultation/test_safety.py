"""Hostile and malformed input: each refused with a clear 4xx, nothing stored."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _join(client, cid):
    token = client.post(f"/api/v1/conversations/{cid}/participants").json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_xss_in_statements_and_descriptions_is_escaped(app, owner, visitor):
    cid = owner.new_conversation(unlock_threshold=0)
    owner.configure(
        cid,
        topic=f"Topic {XSS}",
        description=f"**bold** [link](javascript:alert(1)) {XSS}",
        unlock_threshold=0,
    )
    person = visitor(cid)
    assert person.write(f"I think {XSS}").status_code == 303
    page = visitor(cid).page()
    assert "<script>" not in page and "onerror=" not in page.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in page  # shown as text
    assert "<strong>bold</strong>" in page and "javascript:" not in page  # Markdown kept, scripts dropped
    queue = owner.client.get(f"/admin/c/{cid}/moderate").text
    assert "<script>alert" not in queue
    report = TestClient(app).get(f"/c/{cid}/report").text
    assert "<script>alert" not in report
    assert "default-src 'self'" in TestClient(app).get(f"/c/{cid}").headers["content-security-policy"]


def test_forms_without_csrf_token_are_refused(app, owner, visitor, count):
    cid = owner.new_conversation(unlock_threshold=0)
    owner.seed(cid, "Seed")
    person = visitor(cid)
    person.page()
    for data in ({"statement": 0, "vote": 1}, {"statement": 0, "vote": 1, "csrf_token": "forged"}):
        response = person.client.post(f"/c/{cid}/vote", data=data)
        assert response.status_code in (403, 422)
    other = visitor(cid)
    other.page()  # another participant's token does not fit this participant's cookie
    response = person.client.post(
        f"/c/{cid}/vote", data={"statement": 0, "vote": 1, "csrf_token": other.csrf}
    )
    assert response.status_code == 403
    assert owner.client.post("/admin/conversations", data={"topic": "no token"}).status_code == 422
    forged = owner.client.post("/admin/conversations", data={"topic": "forged", "csrf_token": "x" * 40})
    assert forged.status_code == 403
    assert count("votes", conversation_id=cid) == 0


def test_sql_metacharacters_are_plain_text(app, owner, visitor, count):
    cid = owner.new_conversation(unlock_threshold=0)
    text = "Robert'); DROP TABLE votes; -- \" OR 1=1 %s ?"
    assert visitor(cid).write(text).status_code == 303
    assert text in visitor(cid).page().replace("&#39;", "'").replace("&#34;", '"').replace("&quot;", '"')
    assert count("statements", conversation_id=cid, text=text) == 1
    assert count("votes") >= 1  # the table is still there
    response = TestClient(app).get("/c/1%20OR%201=1")
    assert response.status_code == 422


def test_oversize_and_malformed_bodies(app, owner, count):
    cid = owner.new_conversation()
    owner.seed(cid, "Seed")
    client = TestClient(app)
    headers = _join(client, cid)
    url = f"/api/v1/conversations/{cid}/votes"
    chunks = (b" " * 65536 for _ in range(40))  # 2.5 MiB, streamed without Content-Length
    streamed = client.post(url, headers=headers | {"content-type": "application/json"}, content=chunks)
    assert streamed.status_code == 413, streamed.text
    huge = client.post(
        url, headers=headers | {"content-type": "application/json"}, content=b"{" + b" " * 3_000_000
    )
    assert huge.status_code == 413
    long_text = client.post(
        f"/api/v1/conversations/{cid}/statements", headers=headers, json={"text": "x" * 6000}
    )
    assert long_text.status_code == 422
    assert (
        client.post(
            url, headers=headers | {"content-type": "application/json"}, content=b"{not json"
        ).status_code
        == 422
    )
    for body in (
        {"statement": 0},
        {"statement": "0", "vote": 1},
        {"statement": 0, "vote": 5},
        {"statement": 0, "vote": 1, "extra": 1},
        {"statement": -1, "vote": 1},
        [1, 2],
    ):
        response = client.post(url, headers=headers, json=body)
        assert 400 <= response.status_code < 500, body
        assert response.json()["detail"]
    assert count("votes", conversation_id=cid) == 0


def test_malformed_html_forms(owner, visitor, count):
    cid = owner.new_conversation()
    owner.seed(cid, "Seed")
    person = visitor(cid)
    for data in (
        {"statement": 2**40, "vote": 1},
        {"statement": 0, "vote": 7},
        {"statement": "zero", "vote": 1},
        {"vote": 1},
    ):
        response = person.post("/vote", data)
        assert response.status_code == 422 and ("statement" in response.text or "vote" in response.text)
    assert person.client.get(f"/c/{2**40}").status_code == 422
    assert count("votes", conversation_id=cid) == 0


def test_tokens_are_per_participant_and_per_conversation(app, owner, count):
    first = owner.new_conversation()
    second = owner.new_conversation()
    owner.seed(first, "Seed in first")
    owner.seed(second, "Seed in second")
    client = TestClient(app)
    headers = _join(client, first)
    wrong_conversation = client.post(
        f"/api/v1/conversations/{second}/votes", headers=headers, json={"statement": 0, "vote": 1}
    )
    assert (
        wrong_conversation.status_code == 403 and wrong_conversation.json()["code"] == "unknown_participant"
    )
    invented = client.post(
        f"/api/v1/conversations/{first}/votes",
        headers={"Authorization": "Bearer made-up"},
        json={"statement": 0, "vote": 1},
    )
    assert invented.status_code == 403
    missing = client.post(f"/api/v1/conversations/{first}/votes", json={"statement": 0, "vote": 1})
    assert missing.status_code == 403 and "Bearer" in missing.json()["detail"]
    assert count("votes", conversation_id=first) + count("votes", conversation_id=second) == 0


def test_participants_cannot_moderate(app, owner, visitor, count):
    cid = owner.new_conversation(unlock_threshold=0)
    person = visitor(cid)
    person.write("Mine")
    for path, data in (
        (f"/admin/c/{cid}/statements/0", {"op": "accept"}),
        (f"/admin/c/{cid}/seeds", {"text": "sneaky seed"}),
        (f"/admin/c/{cid}/config", {"topic": "taken over"}),
    ):
        response = person.client.post(path, data=data | {"csrf_token": person.csrf}, follow_redirects=False)
        assert response.status_code == 401
    assert person.client.get(f"/admin/c/{cid}/moderate", follow_redirects=False).status_code == 303
    assert count("statements", conversation_id=cid, moderation=1) == 0
    assert count("statements", conversation_id=cid) == 1


def test_closed_and_unknown_ids(app, owner, count):
    cid = owner.new_conversation()
    owner.seed(cid, "Seed")
    client = TestClient(app)
    headers = _join(client, cid)
    unknown_statement = client.post(
        f"/api/v1/conversations/{cid}/votes", headers=headers, json={"statement": 999, "vote": 1}
    )
    assert unknown_statement.status_code == 404 and "999" in unknown_statement.json()["detail"]
    unknown_conversation = client.post(
        "/api/v1/conversations/99999/votes", headers=headers, json={"statement": 0, "vote": 1}
    )
    assert unknown_conversation.status_code == 404
    assert client.get("/c/99999").status_code == 404
    owner.configure(cid, is_open=False)
    closed = client.post(
        f"/api/v1/conversations/{cid}/votes", headers=headers, json={"statement": 0, "vote": 1}
    )
    assert closed.status_code == 403 and closed.json()["code"] == "closed"
    closed_write = client.post(
        f"/api/v1/conversations/{cid}/statements", headers=headers, json={"text": "late"}
    )
    assert closed_write.status_code == 403
    assert count("votes", conversation_id=cid) == 0


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/"])
def test_login_never_redirects_off_site(app, owner, target):
    client = TestClient(app)
    token = client.get("/login").cookies.get("ccai_login") or client.cookies.get("ccai_login")
    response = client.post(
        "/login",
        data={"email": owner.email, "password": "correct horse battery", "csrf_token": token, "next": target},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/admin"
