"""The organiser's first hour, scripted in chromium (Playwright) on SQLite and PostgreSQL (issue 11).

An organiser logs in and creates a consultation with screening, demographics and seeds; a bulk CSV over
the limit is refused and stores nothing; a participant on a phone is screened, votes (keyboard focus and
a live region follow each vote), reaches the writing gate and writes; strict moderation keeps that
statement off every public page and API until reviewed; the moderator types a reason and presses Enter,
which rejects it (and it stays rejected); the export holds the demographic answers and the "important"
flag. axe-core (vendored, MPL-2.0) checks participant, moderation, admin and report pages for serious or
critical violations. Screenshots at 1280 and 390 px go to ``$CCAI_TEST_ARTEFACTS`` (default: tmp dir).
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from ccai.consultation import accounts
from ccai.consultation.limits import Limits
from ccai.consultation.web.app import WebSettings, create_app
from tests.consultation.live_server import CHROMIUM, running

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    # the embed test's partner page is routed by Playwright, which Chrome would treat as a public site
    # reaching the loopback server (Local Network Access); real embeds are public-to-public
    "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests",
]
AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
EMAIL, PASSWORD = "organiser@example.org", "journey-pass-123"
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 900}

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'journey.sqlite3'}"
    else:  # a fresh database of its own (the shared one holds other tests' conversations)
        admin = sa.create_engine(request.getfixturevalue("postgres_url"), isolation_level="AUTOCOMMIT")
        name = f"ccai_journey_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
    app = create_app(
        WebSettings(database_url=url, secret_key="j" * 40, near_duplicates=False, limits=Limits.off())
    )
    with app.state.sessions() as db:
        accounts.create_user(db, EMAIL, PASSWORD, "owner")
        db.commit()
    with running(app) as base:
        yield base, app, request.param
    app.state.engine.dispose()
    if request.param == "postgres":
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _axe(page, name: str) -> None:
    """Run axe-core on the page; fail on serious or critical violations (naming rule and elements)."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: {bad}"


def _shoot(page, shots: Path, name: str) -> None:
    for width, size in (("1280", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=shots / f"{name}-{width}.png", full_page=True)


def _count(app, table: str, **where) -> int:
    clause = " and ".join(f"{k} = :{k}" for k in where) or "1 = 1"
    with app.state.engine.connect() as conn:
        return conn.execute(sa.text(f"select count(*) from {table} where {clause}"), where).scalar_one()


def _contrast(a: tuple, b: tuple) -> float:
    def lum(rgb):
        c = [x / 255 for x in rgb]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_organiser_first_hour(server, browser, shots, tmp_path):
    base, app, kind = server
    shots = shots / kind
    shots.mkdir(exist_ok=True)
    # bypass_csp: only so axe-core can be injected; the app's own pages never need inline script
    organiser = browser.new_context(viewport=DESKTOP, bypass_csp=True, accept_downloads=True).new_page()
    organiser.goto(f"{base}/login")
    organiser.get_by_label("Email").fill(EMAIL)
    organiser.get_by_label("Password").fill(PASSWORD)
    organiser.get_by_role("button", name="Log in").click()
    organiser.get_by_label("Topic").fill("How should our assistant behave?")
    organiser.get_by_label("Description").first.fill("Vote on what **others** wrote.")
    organiser.get_by_role("button", name="Create").click()
    organiser.wait_for_url(re.compile(r"/admin/c/\d+$"))
    cid = int(organiser.url.rsplit("/", 1)[1])
    organiser.get_by_label("Strict moderation", exact=False).check()
    organiser.get_by_role("button", name="Save settings").click()
    organiser.wait_for_url(re.compile(r"saved=1"))
    for kind_label, text, choices, admitting in (
        ("screening", "Have you used an AI chatbot this month?", "Yes\nNo", "Yes"),
        ("demographic", "Your age group", "18-29\n30-49\n50+", ""),
    ):
        organiser.locator("#kind").select_option(kind_label)
        organiser.locator("#q-text").fill(text)
        organiser.locator("#choices").fill(choices)
        organiser.locator("#eligible_choices").fill(admitting)
        organiser.get_by_role("button", name="Add question").click()
        organiser.get_by_text(text).wait_for()
    for text in (
        "The assistant should explain its reasoning.",
        "It should admit uncertainty.",
        "It should refuse harm.",
    ):
        organiser.locator("#seed-text").fill(text)
        organiser.get_by_role("button", name="Add seed statement").click()
        organiser.wait_for_url(re.compile(r"seeded="))
    assert (
        organiser.locator(".warning", has_text="after 30 votes").count() == 1
    )  # gate 30 > 3 statements: told
    _shoot(organiser, shots, "admin-conversation")
    _axe(organiser, "admin page")
    # a bulk upload over the limit is refused whole
    big = tmp_path / "big.csv"
    big.write_text("comment_text\n" + "".join(f"Bulk statement {i}\n" for i in range(5001)))
    organiser.locator("#seed-file").set_input_files(big)
    organiser.get_by_role("button", name="Upload seeds").click()
    organiser.get_by_role("alert").wait_for()
    assert "5000" in organiser.get_by_role("alert").inner_text()
    _shoot(organiser, shots, "error-page")
    assert _count(app, "statements", conversation_id=cid) == 3

    # a participant on a phone: screened, votes by keyboard, reaches the gate, writes
    phone = browser.new_context(viewport=PHONE, bypass_csp=True).new_page()
    phone.goto(f"{base}/c/{cid}")
    phone.get_by_label("Have you used an AI chatbot this month?").select_option("Yes")
    phone.get_by_label("Your age group").select_option("30-49")
    phone.get_by_role("button", name="Continue").click()
    phone.get_by_role("button", name="Agree", exact=True).wait_for()
    _axe(phone, "participant page")
    phone.get_by_label("This statement is important to me").check()
    for step in range(3):
        before = phone.locator("#statement-text").inner_text() if step < 3 else ""
        button = phone.get_by_role("button", name="Agree", exact=True)
        button.focus()
        phone.keyboard.press("Enter")
        if step < 2:
            phone.wait_for_function(
                "b => document.querySelector('#statement-text')?.innerText !== b", arg=before
            )
            focused = phone.evaluate("document.activeElement && document.activeElement.id")
            assert focused == "statement-text", f"focus went to {focused!r}"
            assert "Vote saved." in phone.locator("#announce").inner_text()
            assert phone.locator("#announce").get_attribute("aria-live") == "polite"
    phone.locator(".notice", has_text="You have voted on every statement").wait_for()
    assert "unlock writing" not in phone.content()  # the gate (30) is reachable: no contradiction
    ring = phone.evaluate(
        """() => { const b = document.querySelector('button'); b.focus();
             return getComputedStyle(b).outlineColor; }"""
    )
    rgb = tuple(int(x) for x in re.findall(r"\d+", ring)[:3])
    assert _contrast(rgb, (255, 255, 255)) >= 3, f"focus ring {ring} on white"
    phone.get_by_label("Your statement").fill("UNREVIEWED: the assistant should always agree with me.")
    phone.get_by_role("button", name="Submit statement").click()
    phone.get_by_text("your statement was added").wait_for()
    _shoot(phone, shots, "participant")

    # strict moderation: nowhere public until reviewed
    report = browser.new_context(viewport=PHONE, bypass_csp=True).new_page()
    report.goto(f"{base}/c/{cid}/report")
    assert "UNREVIEWED" not in report.content()  # not even while the worker computes the first report
    report.locator("p.stats").wait_for()  # the page reloads itself once the report is there
    assert "UNREVIEWED" not in report.content()
    _axe(report, "report page")
    _shoot(report, shots, "report")
    results = report.request.get(f"{base}/api/v1/conversations/{cid}/results").json()
    assert all("UNREVIEWED" not in r["text"] for r in results) and len(results) == 3
    other = browser.new_context(viewport=PHONE).new_page()
    other.goto(f"{base}/c/{cid}")
    assert "UNREVIEWED" not in other.content()

    # the moderator types a reason and presses Enter: a rejection, and it stays rejected
    organiser.goto(f"{base}/admin/c/{cid}/moderate")
    card = organiser.locator("section.card", has_text="UNREVIEWED")
    _axe(organiser, "moderation page")
    _shoot(organiser, shots, "moderation")
    card.get_by_label("Reason").fill("Not about the assistant's behaviour")
    card.get_by_label("Reason").press("Enter")
    organiser.wait_for_url(re.compile(r"tab=pending"))
    assert _count(app, "statements", conversation_id=cid, moderation=-1) == 1
    assert _count(app, "statements", conversation_id=cid, moderation=1) == 3
    organiser.goto(f"{base}/admin/c/{cid}/moderate?tab=rejected")
    organiser.locator("p.statement", has_text="UNREVIEWED").wait_for()
    report.goto(f"{base}/c/{cid}/report")
    report.locator("p.stats").wait_for()
    assert "UNREVIEWED" not in report.content()

    # the export holds the demographic answer and the "important" flag
    response = organiser.request.get(f"{base}/admin/c/{cid}/export.zip")
    assert response.ok
    archive = zipfile.ZipFile(io.BytesIO(response.body()))
    answers = list(csv.DictReader(io.StringIO(archive.read("participant-answers.csv").decode())))
    assert ("demographic", "30-49") in {(a["question-kind"], a["answer"]) for a in answers}
    important = list(csv.DictReader(io.StringIO(archive.read("important-votes.csv").decode())))
    assert len(important) == 1 and important[0]["vote"] == "1"


def test_embed_script_grows_the_frame_with_its_content(server, browser, shots):
    """static/embed.js on another page adds the iframe; the framed page reports its height and the frame
    takes it (instead of a fixed 760 px)."""
    base, app, kind = server
    with app.state.sessions() as db:
        from ccai.consultation import service
        from ccai.consultation.store import User

        owner = db.scalar(sa.select(User))
        conversation = service.create_conversation(db, owner, {"topic": "Embedded", "description": "Short."})
        service.add_seed(db, conversation, "An embedded statement")
        db.commit()
        cid = conversation.id
    page = browser.new_context(viewport=PHONE).new_page()
    port = int(base.rsplit(":", 1)[1])
    partner = f"http://127.0.0.1:{port + 1 if port < 65000 else port - 1}/partner-site"  # another origin
    host = (
        f'<!doctype html><h1>A partner site</h1><script src="{base}/static/embed.js" '
        f'data-conversation="{cid}" data-xid="partner-user-1" data-title="Embedded consultation"></script>'
    )
    page.route(partner, lambda route: route.fulfill(body=host, content_type="text/html"))
    page.goto(partner)
    frame = page.locator("iframe[title='Embedded consultation']")
    frame.wait_for()
    page.wait_for_function("() => document.querySelector('iframe').style.height !== '640px'", timeout=10_000)
    height = int(frame.evaluate("f => parseInt(f.style.height)"))
    inner = page.frame_locator("iframe").locator("body")
    inner.get_by_text("An embedded statement").wait_for()
    assert 300 < height < 3000 and height != 640
    page.screenshot(path=shots / f"embed-{kind}-390.png", full_page=True)
