"""The users page in Debian's chromium: Enter in a password field sets the password and deletes nobody.

Screenshots at 1280 and 390 px go to ``$CCAI_TEST_ARTEFACTS`` (default: a temporary folder).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ccai.consultation import accounts
from ccai.consultation.store import User
from ccai.consultation.web.app import WebSettings, create_app
from tests.consultation.live_server import running

pytestmark = pytest.mark.browser


def test_users_page_enter_is_safe(tmp_path, browser, shots):
    app = create_app(
        WebSettings(
            database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", secret_key="k" * 40, near_duplicates=False
        )
    )
    with app.state.sessions() as db:
        accounts.create_user(db, "chair@example.org", "browser-pass", "owner")
        accounts.create_user(db, "mod@example.org", "browser-pass", "moderator")
        db.commit()
    with running(app) as base:
        for width, height in ((1280, 800), (390, 844)):
            page = browser.new_context(viewport={"width": width, "height": height}).new_page()
            page.goto(f"{base}/admin/users")
            page.get_by_label("Email").fill("chair@example.org")
            page.get_by_label("Password").fill("browser-pass")
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("heading", name="Users").wait_for()
            page.screenshot(path=shots / f"users-{width}.png", full_page=True)
        field = page.locator("#user-2").get_by_label("New password")
        field.fill("another long secret")
        field.press("Enter")
        page.get_by_text("Password set.").wait_for()
        page.screenshot(path=shots / "users-390-password-set.png", full_page=True)
    with app.state.sessions() as db:
        moderator = db.scalar(sa.select(User).where(User.email == "mod@example.org"))
        assert moderator is not None  # Enter did not delete
        assert accounts.authenticate(db, "mod@example.org", "another long secret") is not None
    app.state.engine.dispose()
