"""End to end in Debian's chromium (Playwright) against a real uvicorn server on a loopback port.

A participant is screened, votes, unlocks writing and submits a statement; a moderator logs in, rewrites
and accepts it; a second participant is shown it; the report page shows opinion groups. Screenshots of
each page go to ``$CCAI_TEST_ARTEFACTS`` (default: the test's tmp dir) so a person can look at them.
"""

from __future__ import annotations

import numpy as np
import pytest

from ccai.consultation import accounts, service
from ccai.consultation.web.app import WebSettings, create_app
from tests.consultation.live_server import running

pytestmark = pytest.mark.browser
SEEDS = [
    f"Statement {i}: the AI should {topic}"
    for i, topic in enumerate(
        [
            "explain its reasoning",
            "refuse harmful requests",
            "respect privacy",
            "admit uncertainty",
            "avoid political opinions",
            "prioritise user autonomy",
            "follow local laws",
            "be transparent about being AI",
        ]
    )
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A uvicorn server in a thread with a conversation already voted on by two opinion camps."""
    home = tmp_path_factory.mktemp("browser")
    app = create_app(
        WebSettings(
            database_url=f"sqlite:///{home / 'db.sqlite3'}", secret_key="k" * 40, near_duplicates=False
        )
    )
    with app.state.sessions() as db:
        owner = accounts.create_user(db, "chair@example.org", "browser-pass", "owner")
        conversation = service.create_conversation(
            db,
            owner,
            {
                "topic": "How should an AI assistant behave?",
                "description": "Vote on what **others** wrote.",
                "unlock_threshold": 3,
                "strict_moderation": True,
            },
        )
        service.add_question(
            db, conversation, "screening", "Have you used an AI chatbot in the past month?", "Yes\nNo", "Yes"
        )
        for text in SEEDS:
            service.add_seed(db, conversation, text)
        rng = np.random.default_rng(0)
        for person in range(24):  # two camps that disagree on the odd statements
            participant = service.join(db, conversation, f"camp-{person}")
            participant.eligible = True
            for number in range(len(SEEDS)):
                lean = 1 if (number % 2 == 0 or person % 2 == 0) else -1
                vote = lean if rng.random() < 0.85 else 0
                service.cast_vote(db, conversation, participant, number, vote)
        db.commit()
        cid = conversation.id
    with running(app) as base:
        yield base, cid
    app.state.engine.dispose()


def test_participant_moderator_second_participant_report(server, browser, shots):
    base, cid = server
    phone = {"viewport": {"width": 390, "height": 844}}
    first = browser.new_context(**phone).new_page()
    first.goto(f"{base}/c/{cid}")
    first.get_by_label("Have you used an AI chatbot in the past month?").select_option("Yes")
    first.screenshot(path=shots / "1-screening.png", full_page=True)
    first.get_by_role("button", name="Continue").click()
    for _ in range(3):
        first.get_by_role("button", name="Agree", exact=True).wait_for()
        before = first.locator(".progress").inner_text()
        first.get_by_role("button", name="Agree", exact=True).click()
        first.wait_for_function("b => document.querySelector('.progress')?.innerText !== b", arg=before)
    first.screenshot(path=shots / "2-voting.png", full_page=True)
    first.get_by_label("Your statement").fill("Never sexually harass.")
    first.get_by_role("button", name="Submit statement").click()
    first.get_by_text("your statement was added").wait_for()
    first.screenshot(path=shots / "3-submitted.png", full_page=True)

    moderator = browser.new_context(**phone).new_page()
    moderator.goto(f"{base}/admin/c/{cid}/moderate")
    moderator.get_by_label("Email").fill("chair@example.org")
    moderator.get_by_label("Password").fill("browser-pass")
    moderator.get_by_role("button", name="Log in").click()
    moderator.get_by_text("Never sexually harass.").first.wait_for()
    card = moderator.locator("section.card", has_text="Never sexually harass.")
    card.get_by_label("Rewrite").fill("The AI should never sexually harass anyone.")
    card.get_by_role("button", name="Save wording").click()
    card = moderator.locator("section.card", has_text="The AI should never sexually harass anyone.")
    card.get_by_role("button", name="Accept").click()
    moderator.goto(f"{base}/admin/c/{cid}/moderate?tab=accepted")
    moderator.get_by_text("rewritten from").wait_for()
    moderator.screenshot(path=shots / "4-moderation.png", full_page=True)

    second = browser.new_context(**phone).new_page()
    second.goto(f"{base}/c/{cid}")
    second.get_by_label("Have you used an AI chatbot in the past month?").select_option("Yes")
    second.get_by_role("button", name="Continue").click()
    shown = set()
    for _ in range(len(SEEDS) + 1):
        second.get_by_role("button", name="Pass / Unsure").wait_for()
        text = second.locator("#statement-text").inner_text()
        shown.add(text)
        second.get_by_role("button", name="Pass / Unsure").click()
        second.wait_for_function("t => document.querySelector('#statement-text')?.innerText !== t", arg=text)
    assert "The AI should never sexually harass anyone." in shown
    second.screenshot(path=shots / "5-second-participant.png", full_page=True)

    report = browser.new_context(**phone).new_page()
    report.goto(f"{base}/c/{cid}/report")
    report.get_by_role("heading", name="Opinion groups").wait_for()
    assert report.locator(".group").count() >= 2
    assert report.locator("svg.map circle").count() >= 20
    report.screenshot(path=shots / "6-report.png", full_page=True)
    print(f"screenshots in {shots}")


def test_works_without_javascript(server, browser, shots):
    base, cid = server
    page = browser.new_context(java_script_enabled=False).new_page()
    page.goto(f"{base}/c/{cid}")
    page.get_by_label("Have you used an AI chatbot in the past month?").select_option("No")
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("Thank you for your interest").wait_for()
    page.screenshot(path=shots / "7-not-eligible-no-js.png", full_page=True)
