"""Hostile and malformed input: each refused with a clear 4xx, nothing stored."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.consultation.conftest import report_text

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
    report = report_text(app, TestClient(app), cid)
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


# ---------------------------------------------------------------- abuse controls (issue 11, item 7)


@pytest.fixture
def limited(app):
    """The app with tight limits for one test (the shared app runs without them)."""
    from ccai.consultation.limits import Limits

    saved = app.state.limiter.limits
    limits = Limits(
        joins_per_ip=(5, 60),
        votes_per_participant=(4, 60),
        votes_per_ip=(1000, 60),
        statements_per_participant=(2, 3600),
        statements_per_ip=(100, 3600),
        statement_cap=3,
    )
    app.state.limiter.limits = limits  # the fast vote path holds the same object
    app.state.limiter.reset()
    yield limits
    app.state.limiter.limits = saved
    app.state.limiter.reset()


def test_joins_from_one_address_are_limited(app, owner, count, limited):
    cid = owner.new_conversation()
    client = TestClient(app)
    answers = [client.post(f"/api/v1/conversations/{cid}/participants").status_code for _ in range(8)]
    assert answers == [201] * 5 + [429] * 3
    refused = client.post(f"/api/v1/conversations/{cid}/participants")
    assert refused.json()["code"] == "too_many" and int(refused.headers["retry-after"]) >= 1
    assert count("participants", conversation_id=cid) == 5
    page = TestClient(app).post(f"/c/{cid}/vote", data={}, headers={"accept": "text/html"})
    assert page.status_code in (403, 422)  # (no form token: refused before anyone joins)


def test_votes_and_statements_per_participant_are_limited(app, owner, visitor, count, limited):
    cid = owner.new_conversation(unlock_threshold=0)
    owner.seed(cid, *[f"Seed {i}" for i in range(8)])
    client = TestClient(app)
    headers = _join(client, cid)
    url = f"/api/v1/conversations/{cid}/votes"
    codes = [
        client.post(url, headers=headers, json={"statement": i, "vote": 1}).status_code for i in range(6)
    ]
    assert codes == [201] * 4 + [429] * 2  # the fast path and the route count alike
    assert count("votes", conversation_id=cid) == 4
    person = visitor(cid)
    assert [person.write(f"My statement {i}").status_code for i in range(3)] == [303, 303, 429]
    page = person.write("One more")
    assert page.status_code == 429 and "One more" in page.text  # the draft is kept beside the message


def test_statement_cap_per_participant(app, owner, visitor, count, limited):
    cid = owner.new_conversation(unlock_threshold=0)
    owner.seed(cid, "Seed")
    person = visitor(cid)
    limiter = app.state.limiter
    for i in range(3):
        limiter.reset()  # only the cap, not the hourly rate, is under test here
        assert person.write(f"Capped statement {i}").status_code == 303
    limiter.reset()
    refused = person.write(
        "Capped statement 4",
    )
    assert refused.status_code == 429 and "Capped statement 4" in refused.text
    assert count("statements", conversation_id=cid, is_seed=False) == 3


def test_same_xid_is_the_same_participant_and_screening_sticks(app, owner, count):
    cid = owner.new_conversation()
    response = owner.post(
        f"/admin/c/{cid}/questions",
        {"kind": "screening", "text": "Adult?", "choices": "Yes\nNo", "eligible_choices": "Yes"},
    )
    assert response.status_code == 303
    owner.seed(cid, "Seed")
    client = TestClient(app)
    first = client.post(f"/api/v1/conversations/{cid}/participants", json={"xid": "user-7"}).json()
    qid = int(re.search(r'name="q(\d+)"', client.get(f"/c/{cid}").text).group(1))
    bearer = {"Authorization": f"Bearer {first['token']}"}
    assert client.post(
        f"/api/v1/conversations/{cid}/answers", headers=bearer, json={"answers": {qid: "No"}}
    ).json() == {"eligible": False}
    for _ in range(3):  # cookie-less visits with the same xid: the same person, still not eligible
        browser = TestClient(app)
        page = browser.get(f"/c/{cid}", params={"xid": "user-7"}).text
        assert 'name="vote"' not in page and f'name="q{qid}"' not in page
    again = client.post(f"/api/v1/conversations/{cid}/participants", json={"xid": "user-7"}).json()
    assert again["participant"] == first["participant"] and again["eligible"] is False
    assert count("participants", conversation_id=cid) == 1


def test_closed_conversation_refuses_new_participants(app, owner, count):
    cid = owner.new_conversation()
    owner.seed(cid, "Seed")
    owner.configure(cid, is_open=False)
    client = TestClient(app)
    refused = client.post(f"/api/v1/conversations/{cid}/participants")
    assert refused.status_code == 403 and refused.json()["code"] == "closed"
    page = client.get(f"/c/{cid}", params={"xid": "someone"})
    assert page.status_code == 200 and "closed" in page.text
    assert count("participants", conversation_id=cid) == 0


def test_strangers_cannot_lock_a_moderator_out(app, new_staff):
    from ccai.consultation import accounts

    saved = app.state.login_limiter
    app.state.login_limiter = accounts.LoginLimiter(per_account=3, per_client=50)
    try:
        staff = new_staff("moderator")  # (logs in through "testclient": that address is now known)
        attacker = TestClient(app, client=("203.0.113.9", 50000))
        for _ in range(6):
            token = re.search(r'name="csrf_token" value="([^"]+)"', attacker.get("/login").text).group(1)
            attacker.post("/login", data={"email": staff.email, "password": "guess", "csrf_token": token})
        token = re.search(r'name="csrf_token" value="([^"]+)"', attacker.get("/login").text).group(1)
        blocked = attacker.post(
            "/login", data={"email": staff.email, "password": "guess", "csrf_token": token}
        )
        assert blocked.status_code == 429  # the attacker is slowed down...
        from .conftest import login

        assert login(app, staff.email).client.get("/admin").status_code == 200  # ...the moderator is not
    finally:
        app.state.login_limiter = saved
