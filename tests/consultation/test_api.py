"""The JSON API: join, screening, next statement, vote, submit, results; OpenAPI at /openapi.json."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ccai.consultation.web.fastnext import answer as fastnext_answer


def _join(client, cid, **body):
    response = client.post(f"/api/v1/conversations/{cid}/participants", json=body or None)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_openapi_lists_the_participant_endpoints(app):
    schema = TestClient(app).get("/openapi.json").json()
    paths = set(schema["paths"])
    for path in ("participants", "next", "votes", "statements", "results", "answers", "similar"):
        assert f"/api/v1/conversations/{{conversation_id}}/{path}" in paths
    assert not any(p.startswith("/admin") for p in paths)


def test_api_participant_flow(app, owner, count):
    cid = owner.new_conversation(unlock_threshold=2)
    owner.seed(cid, "Seed one", "Seed two")
    client = TestClient(app)
    headers = _join(client, cid)
    info = client.get(f"/api/v1/conversations/{cid}").json()
    assert info["unlock_threshold"] == 2 and info["is_open"]
    seen = []
    while (nxt := client.get(f"/api/v1/conversations/{cid}/next", headers=headers).json())["statement"]:
        assert nxt["remaining"] == 2 - len(seen)
        seen.append(nxt["statement"]["id"])
        response = client.post(
            f"/api/v1/conversations/{cid}/votes",
            headers=headers,
            json={"statement": nxt["statement"]["id"], "vote": 1, "important": True},
        )
        assert response.status_code == 201 and response.json()["id"] > 0
    assert sorted(seen) == [0, 1] and nxt["can_write"] and nxt["votes_to_unlock"] == 0
    created = client.post(
        f"/api/v1/conversations/{cid}/statements", headers=headers, json={"text": "From the API"}
    )
    assert created.status_code == 201 and created.json()["id"] == 2
    results = {r["id"]: r for r in client.get(f"/api/v1/conversations/{cid}/results").json()}
    assert results[0]["agree"] == 1 and results[2]["agree"] == 1 and results[2]["moderated"] == 0
    assert count("votes", conversation_id=cid) == 3


def test_revote_latest_wins_in_results(app, owner):
    cid = owner.new_conversation()
    owner.seed(cid, "Change of mind")
    client = TestClient(app)
    headers = _join(client, cid)
    for vote in (1, -1):
        client.post(
            f"/api/v1/conversations/{cid}/votes", headers=headers, json={"statement": 0, "vote": vote}
        )
    result = client.get(f"/api/v1/conversations/{cid}/results").json()[0]
    assert (result["agree"], result["disagree"], result["seen"]) == (0, 1, 1)


def test_api_screening(app, owner):
    cid = owner.new_conversation()
    owner.seed(cid, "Seed")
    owner.post(
        f"/admin/c/{cid}/questions",
        {"kind": "screening", "text": "Adult?", "choices": "Yes\nNo", "eligible_choices": "Yes"},
    )
    client = TestClient(app)
    headers = _join(client, cid)
    refused = client.post(
        f"/api/v1/conversations/{cid}/votes", headers=headers, json={"statement": 0, "vote": 1}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "not_eligible"
    qid = int(client.get(f"/c/{cid}").text.split('name="q')[1].split('"')[0])
    wrong = client.post(
        f"/api/v1/conversations/{cid}/answers", headers=headers, json={"answers": {qid: "Maybe"}}
    )
    assert wrong.status_code == 400 and "not a choice" in wrong.json()["detail"]
    ok = client.post(f"/api/v1/conversations/{cid}/answers", headers=headers, json={"answers": {qid: "Yes"}})
    assert ok.json() == {"eligible": True}
    assert (
        client.post(
            f"/api/v1/conversations/{cid}/votes", headers=headers, json={"statement": 0, "vote": 1}
        ).status_code
        == 201
    )


def test_fast_vote_path_answers_like_the_fastapi_route(app, owner):
    """web/fastvote.py must give the same status and body as the FastAPI route it short-cuts."""
    from ccai.consultation.web.app import WebSettings, create_app

    settings = app.state.settings
    plain = create_app(
        WebSettings(
            database_url=settings.database_url,
            secret_key=settings.secret_key,
            near_duplicates=False,
            migrate=False,
            fast_votes=False,
        )
    )
    cid = owner.new_conversation()
    owner.seed(cid, "Seed")
    fast_client, plain_client = TestClient(app), TestClient(plain)
    headers = _join(fast_client, cid)
    cases = [
        (cid, {"statement": 0, "vote": 1}),
        (cid, {"statement": 99, "vote": 1}),
        (cid, {"statement": 0, "vote": 3}),
        (cid, {"statement": 0}),
        (999_999, {"statement": 0, "vote": 1}),
        (cid, {"statement": 0, "vote": True}),
    ]
    for conversation, body in cases:
        url = f"/api/v1/conversations/{conversation}/votes"
        fast, slow = (c.post(url, headers=headers, json=body) for c in (fast_client, plain_client))
        assert fast.status_code == slow.status_code, body
        if fast.status_code != 201:
            assert fast.json() == slow.json(), body
    wrong = {"Authorization": "Bearer not-a-participant"}
    url = f"/api/v1/conversations/{cid}/votes"
    fast, slow = (
        c.post(url, headers=wrong, json={"statement": 0, "vote": 1}) for c in (fast_client, plain_client)
    )
    assert fast.status_code == slow.status_code == 403 and fast.json() == slow.json()
    assert "content-security-policy" in fast.headers
    plain.state.engine.dispose()


def test_concurrent_votes_are_written_together_and_answered_one_by_one(app, owner, count):
    """PostgreSQL's fast path writes the votes waiting at one moment in one statement (VOTE_BATCH):
    each request still gets its own id, or its own refusal, and every id is committed."""
    import asyncio

    import pytest

    from ccai.consultation.rules import NotFound
    from ccai.consultation.web.fastvote import PgVotes

    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("the batched path is PostgreSQL's")
    cid = owner.new_conversation()
    owner.seed(cid, "First", "Second", "Third")
    client = TestClient(app)
    tokens = [_join(client, cid)["Authorization"][7:] for _ in range(3)]
    writer = PgVotes(app.state.engine, size=1)  # one connection: all but the first vote wait and batch

    async def burst():
        votes = [(t, n, v) for t in tokens for n, v in ((0, 1), (1, -1), (2, 0))]
        votes += [(tokens[0], 0, -1), (tokens[1], 99, 1), ("not-a-token", 0, 1)]  # re-vote, 2 refusals
        return await asyncio.gather(
            *(writer.record(cid, t, n, v, False) for t, n, v in votes), return_exceptions=True
        )

    answers = asyncio.run(burst())
    ids = answers[:10]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 10
    assert isinstance(answers[10], NotFound) and answers[10].code == "no_statement"
    assert answers[11].code == "unknown_participant"
    assert count("votes", conversation_id=cid) == 10
    latest = client.get(f"/api/v1/conversations/{cid}/results").json()[0]
    assert (latest["agree"], latest["disagree"]) == (2, 1)  # participant 0's re-vote counts, not the first


def test_fast_next_path_routes_like_the_fastapi_route(app, owner, monkeypatch):
    """web/fastnext.py must answer what the FastAPI route answers: same draw, counts, errors; a rejected
    statement is never offered again, even by a worker whose snapshot predates the rejection."""
    from ccai.consultation.web import fastnext
    from ccai.consultation.web.app import WebSettings, create_app

    monkeypatch.setattr(fastnext, "REFRESH_S", 0.0)  # exact mode: fresh counters for every request
    answered = []
    monkeypatch.setattr(fastnext, "answer", lambda *a: answered.append(1) or fastnext_answer(*a))
    settings = app.state.settings
    plain = create_app(
        WebSettings(
            database_url=settings.database_url,
            secret_key=settings.secret_key,
            near_duplicates=False,
            migrate=False,
            fast_next=False,
        )
    )
    cid = owner.new_conversation(unlock_threshold=3)
    owner.seed(cid, *(f"Statement number {i}" for i in range(8)))
    with TestClient(app) as fast_client, TestClient(plain) as plain_client:
        people = [_join(fast_client, cid) for _ in range(3)]
        url = f"/api/v1/conversations/{cid}/next"
        for step in range(5):
            for k, headers in enumerate(people):
                fast, slow = fast_client.get(url, headers=headers), plain_client.get(url, headers=headers)
                assert fast.status_code == slow.status_code == 200
                assert fast.json() == slow.json(), (step, k)
                number = fast.json()["statement"]["id"]
                vote = {"statement": number, "vote": (k + step) % 3 - 1}
                assert fast_client.post(f"/api/v1/conversations/{cid}/votes", headers=headers, json=vote)
            if step == 1:  # reject what the first person would be offered next
                offered = fast_client.get(url, headers=people[0]).json()["statement"]["id"]
                rejected = owner.post(
                    f"/admin/c/{cid}/statements/{offered}", {"op": "reject", "reason": "off topic"}
                )
                assert rejected.status_code == 303
        for headers in people:
            rest = fast_client.get(url, headers=headers).json()
            assert rest == plain_client.get(url, headers=headers).json()
            assert rest["remaining"] == 8 - 1 - 5 or rest["remaining"] == 8 - 5  # one was rejected
            assert rest["can_write"] and rest["votes_to_unlock"] == 0
        assert offered not in _offered_until_done(fast_client, cid, people[0])
        for headers, conversation in (
            ({"Authorization": "Bearer not-a-participant"}, cid),
            ({}, cid),
            (people[0], 999_999),
        ):
            path = f"/api/v1/conversations/{conversation}/next"
            fast, slow = fast_client.get(path, headers=headers), plain_client.get(path, headers=headers)
            assert fast.status_code == slow.status_code and fast.status_code in (401, 403, 404)
            assert fast.json() == slow.json()
    assert len(answered) >= 15  # the fast path answered (not the route behind it)
    plain.state.engine.dispose()


def _offered_until_done(client, cid, headers) -> list[int]:
    offered = []
    while (nxt := client.get(f"/api/v1/conversations/{cid}/next", headers=headers).json())["statement"]:
        offered.append(nxt["statement"]["id"])
        client.post(
            f"/api/v1/conversations/{cid}/votes", headers=headers, json={"statement": offered[-1], "vote": 0}
        )
    return offered


def test_concurrent_next_lookups_share_one_round_trip(app, owner):
    """PostgreSQL: the fast next path's lookups waiting at one moment go out as one statement, and each
    request still gets its own participant (or none, for an unknown token)."""
    import asyncio

    import pytest

    from ccai.consultation.store import token_digest
    from ccai.consultation.web.fastnext import PG_LOOKUP, Asker
    from ccai.consultation.web.pgpool import Batcher, PgPool

    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("the batched lookup is PostgreSQL's")
    cid = owner.new_conversation()
    owner.seed(cid, "First", "Second")
    client = TestClient(app)
    tokens = [_join(client, cid)["Authorization"][7:] for _ in range(2)]
    client.post(
        f"/api/v1/conversations/{cid}/votes",
        headers={"Authorization": f"Bearer {tokens[0]}"},
        json={"statement": 1, "vote": 1},
    )
    lookups = Batcher(PgPool(app.state.engine, size=1), PG_LOOKUP, ("cid", "token_hash"))

    async def burst():
        asks = [(cid, t) for t in tokens] + [(cid, "unknown"), (999_999, tokens[0])]
        return await asyncio.gather(
            *(lookups.run({"cid": c, "token_hash": token_digest(t)}) for c, t in asks)
        )

    first, second, unknown, elsewhere = asyncio.run(burst())
    people = [Asker(*rows[0][:8], list(rows[0][8])) for rows in (first, second)]
    assert people[0].participant_id != people[1].participant_id and people[0].eligible is True
    assert len(people[0].voted) == 1 and people[1].voted == []
    assert unknown[0][6] is None  # the conversation, but no participant
    assert elsewhere == []  # no such conversation
