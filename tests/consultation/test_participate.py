"""The participant flow through the real app's HTML pages (plain forms, no JavaScript), on both databases."""

from __future__ import annotations

import re

import sqlalchemy as sa


def _seeded(owner, n=3, **settings):
    cid = owner.new_conversation(**settings)
    owner.seed(cid, *[f"Seed statement number {i}" for i in range(n)])
    return cid


def test_vote_through_every_statement(app, count, owner, visitor):
    cid = _seeded(owner, 3)
    person = visitor(cid)
    page = person.page()
    assert "3 left" in page and 'name="vote" value="1"' in page
    assert person.client.cookies.get(f"ccai_p{cid}")
    assert person.vote(1, important=True).status_code == 303
    assert "2 left" in person.page()
    assert person.vote_all(-1) == 2
    assert "voted on every statement" in person.page()
    assert count("votes", conversation_id=cid) == 3
    assert count("votes", conversation_id=cid, important=True) == 1


def test_cookie_is_http_only(app, owner):
    from fastapi.testclient import TestClient

    cid = _seeded(owner, 1)
    response = TestClient(app).get(f"/c/{cid}")
    cookie = [v for k, v in response.headers.multi_items() if k == "set-cookie" and f"ccai_p{cid}=" in v][0]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_embed_snippet_and_cookies_for_embeds_over_https(app, owner):
    """Owners get an iframe snippet; with secure cookies the participant cookie also works in a frame."""
    from fastapi.testclient import TestClient

    from ccai.consultation.web.app import WebSettings, create_app

    cid = _seeded(owner, 1)
    page = owner.client.get(f"/admin/c/{cid}").text
    assert f"&lt;iframe src=&#34;http://testserver/c/{cid}?xid=USER_ID&#34;" in page
    assert "http://testserver/static/embed.js" in page and "CCAI_PUBLIC_URL" in page  # Host-made: warned
    forged = owner.client.get(f"/admin/c/{cid}", headers={"host": "evil.example"}).text
    settings = app.state.settings
    saved, settings.public_url = settings.public_url, "https://consult.example.org"
    try:
        pinned = owner.client.get(f"/admin/c/{cid}", headers={"host": "evil.example"}).text
    finally:
        settings.public_url = saved
    assert "evil.example/static/embed.js" in forged  # (why a public URL should be set)
    assert "https://consult.example.org/static/embed.js" in pinned and "evil.example" not in pinned
    assert "CCAI_PUBLIC_URL" not in pinned
    for name in ("embed.js", "frame.js"):
        assert owner.client.get(f"/static/{name}").status_code == 200
    secure = create_app(
        WebSettings(
            settings.database_url,
            settings.secret_key,
            near_duplicates=False,
            migrate=False,
            secure_cookies=True,
        )
    )
    response = TestClient(secure, base_url="https://testserver").get(f"/c/{cid}")
    secure.state.engine.dispose()
    cookie = [v for k, v in response.headers.multi_items() if k == "set-cookie" and f"ccai_p{cid}=" in v][0]
    assert all(part in cookie for part in ("HttpOnly", "Secure", "SameSite=none", "Partitioned"))
    assert "frame-ancestors *" in response.headers["content-security-policy"]


def test_htmx_vote_returns_only_the_panel(owner, visitor):
    cid = _seeded(owner, 2)
    person = visitor(cid)
    response = person.post(
        "/vote", {"statement": person.current(), "vote": 0}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="participate">') and "<html" not in response.text
    assert "1 left" in response.text


def test_writing_unlocks_after_threshold_and_counts_as_agree(app, owner, visitor):
    cid = _seeded(owner, 3, unlock_threshold=2, max_length=60)
    person = visitor(cid)
    assert "Vote on 2 more" in person.page()
    refused = person.write("AI should explain its reasoning")
    assert refused.status_code == 403 and "2 more" in refused.text
    person.vote(1)
    person.vote(1)
    response = person.write("AI should explain its reasoning")
    assert response.status_code == 303
    assert "your statement was added" in person.page(added=1)
    query = sa.text(
        "select s.moderation, s.is_seed, v.vote from statements s join votes v on v.statement_id = s.id "
        "and v.participant_id = s.author_id where s.text = :text and s.conversation_id = :cid"
    )
    with app.state.engine.connect() as conn:
        rows = conn.execute(query, {"text": "AI should explain its reasoning", "cid": cid}).all()
    assert rows == [(0, False, 1)]  # pending moderation, not a seed, the author's agree vote


def test_length_limit_and_exact_duplicates(app, count, owner, visitor):
    cid = _seeded(owner, 1, unlock_threshold=0, max_length=30)
    person = visitor(cid)
    too_long = person.write("x" * 31)
    assert too_long.status_code == 400 and "limit is 30" in too_long.text
    duplicate = person.write("  seed STATEMENT number 0. ")
    assert duplicate.status_code == 409 and "already exists" in duplicate.text
    assert count("statements", conversation_id=cid) == 1


def test_participant_sees_others_statements_in_permissive_mode(owner, visitor):
    cid = _seeded(owner, 1, unlock_threshold=0)
    visitor(cid).write("Written by the first participant")
    second = visitor(cid)
    texts = set()
    while (number := second.current()) is not None:
        texts.add(re.search(r'id="statement-text"[^>]*>([^<]+)<', second.page()).group(1))
        second.vote(1, number)
    assert texts == {"Seed statement number 0", "Written by the first participant"}


def test_strict_moderation_hides_pending_statements(owner, visitor):
    cid = _seeded(owner, 1, unlock_threshold=0, strict_moderation=True)
    visitor(cid).write("Only shown once accepted")
    second = visitor(cid)
    assert "1 left" in second.page()


def test_closed_conversation_accepts_nothing(app, count, owner, visitor):
    cid = _seeded(owner, 2, unlock_threshold=0)
    person = visitor(cid)
    number = person.current()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', person.page()).group(1)
    owner.configure(cid, is_open=False)
    page = person.page()
    assert "This conversation is closed" in page and 'name="vote"' not in page
    response = person.client.post(f"/c/{cid}/vote", data={"csrf_token": csrf, "statement": number, "vote": 1})
    assert response.status_code == 403 and "closed" in response.text
    response = person.client.post(f"/c/{cid}/statements", data={"csrf_token": csrf, "text": "Late idea"})
    assert response.status_code == 403
    assert count("votes", conversation_id=cid) == 0


def test_screening_admits_and_politely_ends(app, count, owner, visitor):
    cid = _seeded(owner, 2)
    owner.post(
        f"/admin/c/{cid}/questions",
        {
            "kind": "screening",
            "text": "Have you used an AI chatbot recently?",
            "choices": "Yes\nNo",
            "eligible_choices": "Yes",
        },
    )
    owner.post(
        f"/admin/c/{cid}/questions",
        {"kind": "demographic", "text": "Age group", "choices": "18-29\n30-49\n50+"},
    )
    ids = dict(
        (q, int(i)) for i, q in re.findall(r'<label for="q(\d+)">([^<]+)</label>', visitor(cid).page())
    )
    screen, age = ids["Have you used an AI chatbot recently?"], ids["Age group"]

    admitted = visitor(cid)
    assert "A few questions first" in admitted.page() and 'name="vote"' not in admitted.page()
    assert admitted.vote(1, statement=0).status_code == 403  # no voting before screening
    assert admitted.post("/answers", {f"q{screen}": "Yes", f"q{age}": "30-49"}).status_code == 303
    assert 'name="vote"' in admitted.page()

    refused = visitor(cid)
    assert refused.post("/answers", {f"q{screen}": "No"}).status_code == 303
    page = refused.page()
    assert "Thank you for your interest" in page and 'name="vote"' not in page
    assert refused.vote(1, statement=0).status_code == 403
    assert count("answers", question_id=age) == 1  # demographics stored apart from votes
    assert count("votes", conversation_id=cid) == 0


def test_xid_and_allow_list(app, count, owner, visitor):
    cid = _seeded(owner, 1, xid_required=True, use_xid_allowlist=True)
    owner.post(f"/admin/c/{cid}/allowlist", {"xids": "alice\nbob\n"})
    assert visitor(cid).client.get(f"/c/{cid}", params={"xid": "eve"}).status_code == 403
    person = visitor(cid)
    assert person.client.get(f"/c/{cid}", params={"xid": "alice"}).status_code == 200
    assert person.vote(1).status_code == 303
    assert count("participants", conversation_id=cid, xid="alice") == 1
    nobody = visitor(cid)
    assert nobody.vote(1, statement=0).status_code == 403  # no xid: refused


def test_german_catalogue(owner, visitor):
    cid = _seeded(owner, 1)
    person = visitor(cid)
    page = person.page(lang="de")
    assert "Zustimmen" in page and "Ablehnen" in page and '<html lang="de">' in page
    assert "Zustimmen" in person.page()  # remembered in a cookie
    other = visitor(cid)
    assert "Agree" in other.client.get(f"/c/{cid}", headers={"Accept-Language": "en-GB,en"}).text
    assert "Zustimmen" in other.client.get(f"/c/{cid}", headers={"Accept-Language": "de-DE,de;q=0.9"}).text


def test_optional_demographics_without_screening(count, owner, visitor):
    cid = _seeded(owner, 1)
    question = {"kind": "demographic", "text": "Region", "choices": "North\nSouth"}
    owner.post(f"/admin/c/{cid}/questions", question)
    person = visitor(cid)
    page = person.page()
    assert "About you (optional)" in page and 'name="vote"' in page  # voting is not blocked
    qid = int(re.search(r'<label for="q(\d+)">Region</label>', page).group(1))
    assert person.post("/answers", {f"q{qid}": "South"}).status_code == 303
    assert "About you (optional)" not in person.page()
    assert count("answers", question_id=qid) == 1
    assert person.post("/answers", {f"q{qid}": "Atlantis"}).status_code == 400


def test_catalogues_cover_every_template_string():
    """Every t("key") in the templates (admin pages included) exists in English and in German."""
    import json
    from pathlib import Path

    web = Path(__file__).parents[2] / "src/ccai/consultation/web"
    used = {
        key
        for page in (web / "templates").rglob("*.html")
        for key in re.findall(r'\bt\("([a-z_]+)"\)|\bt\("([a-z_]+)",', page.read_text())
        for key in key
        if key
    }
    catalogues = {lang: json.loads((web / f"i18n/{lang}.json").read_text()) for lang in ("en", "de")}
    assert catalogues["en"].keys() == catalogues["de"].keys()
    assert used - catalogues["en"].keys() == set()
    assert {"save_wording", "seeds_title", "queue_counts"} <= used  # the admin pages are in the catalogue
