"""The organiser's new pages in Debian's chromium, at 1280 and 390 px: API reference, statement table,
question edit, delete confirmation, with axe-core (no serious or critical violations) and the keyboard.

Screenshots go to ``$CCAI_TEST_ARTEFACTS`` (default: a temporary folder), under ``organise-<db>``.
"""

from __future__ import annotations

import re

import pytest

from tests.consultation.conftest import PASSWORD
from tests.consultation.live_server import running
from tests.consultation.test_journey_browser import DESKTOP, PHONE, _axe, _shoot
from tests.consultation.test_organise import _populated, _rows_of

pytestmark = pytest.mark.browser


def test_organiser_pages_in_the_browser(app, owner, visitor, browser, shots, database_url):
    kind = "postgres" if database_url.startswith("postgresql") else "sqlite"
    shots = shots / f"organise-{kind}"
    shots.mkdir(exist_ok=True)
    cid = _populated(owner, visitor)
    with running(app) as base:
        # bypass_csp only so axe-core can be injected; the pages themselves run no inline script
        context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
        page = context.new_page()
        messages, failed = [], []
        page.on("console", lambda m: messages.append(m.text) if m.type == "error" else None)
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        requests = []
        page.on("request", lambda r: requests.append(r.url))

        page.goto(f"{base}/api/docs")
        page.get_by_role("heading", name="API reference", level=1).wait_for()
        assert page.locator("section.operation").count() >= 8
        assert not [u for u in requests if not u.startswith(base)]  # nothing from another origin
        assert all(u.endswith("/favicon.ico") for u in failed), failed  # (the app has no icon)
        # no CSP refusal, no script error (chromium's own favicon request answers 404: the app has none)
        assert not [m for m in messages if "status of 404" not in m], messages
        _axe(page, "API reference")
        _shoot(page, shots, "api-docs")

        page.set_viewport_size(DESKTOP)
        page.goto(f"{base}/login?next=/admin/c/{cid}/statements")
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("heading", name="Statements", level=1).wait_for()
        _axe(page, "statement table")
        _shoot(page, shots, "statements")
        # the filter by keyboard: status, then Enter in the search box
        page.set_viewport_size(DESKTOP)
        page.get_by_label("Status").select_option("rejected")
        page.get_by_label("Text contains").fill("parks")
        page.get_by_label("Text contains").press("Enter")
        page.wait_for_url(re.compile(r"status=rejected"))
        assert page.locator("tbody tr").count() == 1
        assert page.get_by_label("Text contains").input_value() == "parks"
        page.goto(f"{base}/admin/c/{cid}/statements?sort=bogus&q=kept")
        assert page.get_by_role("alert").inner_text().startswith("Order: “bogus” is not one of the options")
        assert page.get_by_label("Order").get_attribute("aria-invalid") == "true"
        _axe(page, "statement table, refused filter")
        _shoot(page, shots, "statements-refused")

        page.set_viewport_size(DESKTOP)
        page.goto(f"{base}/admin/c/{cid}")
        _axe(page, "conversation page")
        _shoot(page, shots, "admin-conversation")
        # adding a question with a mistake: the page again, the field marked, the draft kept
        page.set_viewport_size(DESKTOP)
        page.get_by_label("Question", exact=True).fill("Do you live in the city?")
        page.get_by_label("Choices (one per line)").fill("yes\nno")
        page.get_by_label("Answers that admit (screening only, one per line)").fill("maybe")
        page.get_by_role("button", name="Add question").click()
        page.get_by_role("alert").wait_for()
        assert page.get_by_label("Question", exact=True).input_value() == "Do you live in the city?"
        admit = page.get_by_label("Answers that admit (screening only, one per line)")
        assert admit.get_attribute("aria-invalid") == "true"
        _axe(page, "conversation page, refused question")
        _shoot(page, shots, "admin-question-add-refused")
        page.set_viewport_size(DESKTOP)
        page.goto(f"{base}/admin/c/{cid}")
        page.set_viewport_size(DESKTOP)
        page.get_by_role("link", name="Edit question: Are you 18?").click()
        page.get_by_role("heading", name="Edit question").wait_for()
        page.get_by_label("Choices (one per line)").fill("no\nmaybe")
        page.get_by_label("Answers that admit").fill("no")
        page.get_by_role("button", name="Save question").click()
        page.get_by_role("alert").wait_for()
        assert "yes was already chosen" in page.get_by_role("alert").inner_text()
        assert page.get_by_label("Choices (one per line)").input_value() == "no\nmaybe"  # draft kept
        _axe(page, "question edit, refused")
        _shoot(page, shots, "question-refused")
        page.set_viewport_size(DESKTOP)
        page.get_by_label("Choices (one per line)").fill("yes\nno\nrather not say")
        page.get_by_label("Answers that admit").fill("yes")
        page.get_by_label("Question", exact=True).press("Enter")  # Enter in the text box saves
        page.get_by_text("Saved.").wait_for()
        assert "rather not say" in page.locator("#questions").inner_text()
        page.get_by_role("button", name="Move up: Region?").click()
        page.get_by_text("Saved.").wait_for()
        items = page.locator("ol.questions > li").all_inner_texts()
        assert "Region?" in items[0] and "Are you 18?" in items[1]

        before = _rows_of(app, cid)
        page.get_by_role("link", name="Delete…").click()
        page.get_by_role("heading", name="Delete this conversation", level=1).wait_for()
        _axe(page, "delete page")
        _shoot(page, shots, "delete")
        page.set_viewport_size(PHONE)
        page.get_by_label("To confirm, type the conversation's title:").fill("Parks for every")
        page.get_by_label("To confirm, type the conversation's title:").press("Enter")
        page.get_by_role("alert").wait_for()
        assert _rows_of(app, cid) == before  # a wrong title deletes nothing
        assert (
            page.get_by_label("To confirm, type the conversation's title:").input_value() == "Parks for every"
        )
        _axe(page, "delete page, refused")
        _shoot(page, shots, "delete-refused")
        page.get_by_label("To confirm, type the conversation's title:").fill("Parks for everyone")
        page.get_by_role("button", name="Delete this conversation for good").click()
        page.get_by_text("The conversation was deleted.").wait_for()
        assert set(_rows_of(app, cid).values()) == {0}
        _shoot(page, shots, "admin-after-delete")
        context.close()


def test_invite_pages_in_the_browser(app, owner, browser, shots, database_url):
    """The users page's invite form and the invite page, by keyboard, with axe, at 1280 and 390 px."""
    kind = "postgres" if database_url.startswith("postgresql") else "sqlite"
    shots = shots / f"organise-{kind}"
    shots.mkdir(exist_ok=True)
    with running(app) as base:
        context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
        page = context.new_page()
        page.goto(f"{base}/login?next=/admin/users")
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("heading", name="Invite someone").wait_for()
        page.get_by_label("Valid for").select_option("3")
        page.get_by_label("For whom (a note for you, optional)").fill("Sam from the council")
        page.get_by_label("For whom (a note for you, optional)").press("Enter")
        link = page.get_by_label("Send this link to the person").input_value()
        assert "/invite/" in link and "Sam from the council" in page.locator("#invites").inner_text()
        _axe(page, "users page with an invite")
        _shoot(page, shots, "users-invite")

        guest = browser.new_context(viewport=PHONE, bypass_csp=True).new_page()
        guest.goto(link)
        guest.get_by_role("heading", name="Create your account").wait_for()
        guest.get_by_label("Email").fill(f"sam-{kind}@example.org")
        guest.get_by_label("Choose a password").fill("short")
        guest.get_by_label("Choose a password").press("Enter")  # the browser's minlength check stops it
        assert guest.get_by_role("alert").count() == 0
        guest.locator("#password").evaluate("e => e.removeAttribute('minlength')")
        guest.get_by_label("Choose a password").press("Enter")
        guest.get_by_role("alert").wait_for()
        assert guest.get_by_label("Email").input_value() == f"sam-{kind}@example.org"
        _axe(guest, "invite page, refused")
        _shoot(guest, shots, "invite-refused")
        guest.set_viewport_size(PHONE)
        guest.get_by_label("Choose a password").fill("a long enough password")
        guest.get_by_role("button", name="Create account and log in").click()
        guest.get_by_role("heading", name="Conversations").wait_for()
        guest.goto(link)
        assert "used already" in guest.get_by_role("alert").inner_text()
        _shoot(guest, shots, "invite-used")
        # a moderator of one conversation: invited for it, sees it alone
        cid = owner.new_conversation(f"Only this one ({kind})")
        page.set_viewport_size(DESKTOP)
        page.goto(f"{base}/admin/users")
        page.get_by_label("Role").first.select_option("member")
        page.get_by_label("Conversation (for a moderator of chosen conversations)").select_option(str(cid))
        page.get_by_role("button", name="Create invite link").click()
        link = page.get_by_label("Send this link to the person").input_value()
        member = browser.new_context(viewport=DESKTOP, bypass_csp=True).new_page()
        member.goto(link)
        member.get_by_label("Email").fill(f"one-{kind}@example.org")
        member.get_by_label("Choose a password").fill("a long enough password")
        member.get_by_role("button", name="Create account and log in").click()
        member.get_by_role("heading", name="Conversations").wait_for()
        assert member.locator("ul.list > li").count() == 1
        assert f"Only this one ({kind})" in member.locator("ul.list").inner_text()
        _axe(member, "a member's admin list")
        _shoot(member, shots, "member-admin")
        page.goto(f"{base}/admin/c/{cid}#moderators")
        assert f"one-{kind}@example.org" in page.locator("#moderators").inner_text()
        _axe(page, "conversation page with a moderator")
        _shoot(page, shots, "admin-conversation-moderators")
        context.close()
