"""Errors are not dead ends (issue 11, item 6): HTML pages for browsers, JSON for the API, the draft kept
beside a localized message, language links that work on every page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_unknown_pages_answer_html_to_browsers_and_json_to_the_api(app):
    client = TestClient(app)
    page = client.get("/no/such/page", headers=BROWSER)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "There is no page at this address." in page.text and 'href="/"' in page.text
    german = client.get("/no/such/page", headers=BROWSER | {"accept-language": "de"})
    assert "Unter dieser Adresse gibt es keine Seite." in german.text
    api = client.get("/api/v1/nothing")
    assert api.status_code == 404 and api.json()["code"] == "not_found"
    asked = client.get("/no/such/page", headers={"accept": "application/json"})
    assert asked.json()["code"] == "not_found"
    wrong_method = client.get("/login/../logout", headers=BROWSER)
    assert wrong_method.headers["content-type"].startswith("text/html")


def test_duplicate_and_overlong_statements_keep_the_draft_in_german(app, owner, visitor, count):
    cid = owner.new_conversation(unlock_threshold=0, max_length=40)
    owner.seed(cid, "Die KI soll ehrlich sein")
    person = visitor(cid)
    person.client.get(f"/c/{cid}", params={"lang": "de"})  # remembered in a cookie
    duplicate = person.write("die KI soll ehrlich sein!")
    assert duplicate.status_code == 409
    assert "Diese Aussage gibt es in der Diskussion schon." in duplicate.text
    assert ">die KI soll ehrlich sein!</textarea>" in duplicate.text  # the draft is still there
    assert 'aria-invalid="true"' in duplicate.text and "Something went wrong" not in duplicate.text
    draft = "Ein sehr langer Entwurf, der über das Limit hinausgeht."
    too_long = person.write(draft)
    assert too_long.status_code == 400 and f">{draft}</textarea>" in too_long.text
    assert f"Ihre Aussage hat {len(draft)} Zeichen; erlaubt sind 40." in too_long.text
    assert count("statements", conversation_id=cid) == 1


def test_language_links_work_on_error_pages_answering_a_post(app, owner, visitor):
    cid = owner.new_conversation(unlock_threshold=5)
    owner.seed(cid, "Seed")
    person = visitor(cid)
    refused = person.post("/vote", {"statement": 99, "vote": 1})
    assert refused.status_code == 404
    links = re.findall(r'href="(/lang/de\?next=[^"]+)"', refused.text)
    assert links, "no language link"
    switched = person.client.get(links[0].replace("&amp;", "&"), follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == f"/c/{cid}"
    assert (
        "Abstimmung" in person.client.get(f"/c/{cid}").text
        or 'lang="de"' in person.client.get(f"/c/{cid}").text
    )
    assert (
        person.client.get("/lang/de?next=//evil.example", follow_redirects=False).headers["location"] == "/"
    )
    assert person.client.get("/lang/xx", headers=BROWSER).status_code == 404


def test_api_docs_page_fits_the_csp(app):
    """/api/docs used to be blank (Swagger UI's inline start refused by the CSP), then loaded Swagger UI
    from a CDN. Now the reference is rendered here from /openapi.json: same CSP as every page, nothing
    fetched from another origin, every operation listed with its fields, in the reader's language."""
    client = TestClient(app)
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert csp == client.get("/").headers["content-security-policy"].replace("*", "'none'")
    assert "http" not in csp  # no other origin may serve anything
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', page.text)  # no asset from elsewhere
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, flags=re.S)
    assert all("src=" in attrs and not body.strip() for attrs, body in scripts)  # none inline
    spec = client.get("/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method in methods:
            assert f"{method.upper()} {path}" in page.text
    vote = page.text.split('id="vote_api_v1_conversations__conversation_id__votes_post"')[1]
    vote = vote.split("</section>")[0]
    assert "<code>important</code>" in vote and "1 agree, -1 disagree, 0 pass" in vote
    assert "VoteOut" in vote and "needs the participant token" in vote
    assert "API-Referenz" in client.get("/api/docs?lang=de").text
    assert client.get("/static/swagger-init.js").status_code == 404


def test_embed_without_cookies_explains_instead_of_looping(app, owner):
    """In another site's frame over plain HTTP the browser withholds the cookie: say so, link a new tab."""
    cid = owner.new_conversation()
    owner.seed(cid, "Seed")
    framed = TestClient(app)
    framed.get(f"/c/{cid}")
    framed.cookies.clear()  # what the browser does with a SameSite=Lax cookie in a cross-site frame
    headers = BROWSER | {"sec-fetch-dest": "iframe", "sec-fetch-site": "cross-site"}
    response = framed.post(
        f"/c/{cid}/vote", data={"statement": 0, "vote": 1, "csrf_token": "x"}, headers=headers
    )
    assert response.status_code == 403 and "own tab" in response.text
    assert f'href="/c/{cid}" target="_blank"' in response.text and "form expired" not in response.text
