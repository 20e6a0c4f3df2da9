"""Fixtures for the consultation tests: the real app on a real database, SQLite and PostgreSQL.

``backend`` is parametrised: every test that uses ``app`` runs once on a SQLite file (WAL) and once on a
fresh PostgreSQL database created for the session through Alembic and dropped at the end (``postgres``
marker; skipped when the server is down, except under CI). Helpers drive the HTML forms the way a browser
does: read the CSRF token from the page, post the form.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ccai.consultation import accounts
from ccai.consultation.limits import Limits
from ccai.consultation.web.app import WebSettings, create_app

# the same server tests/conftest.py checks (and skips postgres-marked tests without)
POSTGRES_URL = os.environ.get("CCAI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "correct horse battery"
_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session; dropped afterwards."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"ccai_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path_factory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'consultation.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def app(database_url):
    """The app, migrated by Alembic on start (near-duplicate hints off: the MiniLM test turns them on)."""
    application = create_app(
        WebSettings(
            database_url=database_url,
            secret_key="test-secret-" + "x" * 32,
            near_duplicates=False,
            limits=Limits.off(),  # the shared app makes hundreds of participants; test_safety tests limits
        )
    )
    yield application
    application.state.engine.dispose()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def rows_in(app, table: str, **where) -> int:
    """Rows in ``table`` (optionally filtered by equality) straight from the database."""
    clause = " and ".join(f"{k} = :{k}" for k in where) or "1 = 1"
    with app.state.engine.connect() as conn:
        return conn.execute(sa.text(f"select count(*) from {table} where {clause}"), where).scalar_one()


@pytest.fixture
def count(app):
    """``count(table, **equal)``: rows in a table, read straight from the database."""
    return lambda table, **where: rows_in(app, table, **where)


@dataclass
class Staff:
    """A logged-in moderator or owner driving the admin pages."""

    client: TestClient
    email: str

    def csrf(self, path: str = "/admin") -> str:
        return csrf_of(self.client.get(path).text)

    def post(self, path: str, data: dict | None = None, **kwargs):
        data = {"csrf_token": self.csrf(), **(data or {})}
        return self.client.post(path, data=data, follow_redirects=False, **kwargs)

    def new_conversation(self, topic: str = "How should AI behave?", **settings) -> int:
        response = self.post("/admin/conversations", {"topic": topic, "description": "Say what you think."})
        assert response.status_code == 303, response.text
        cid = int(response.headers["location"].rsplit("/", 1)[1])
        if settings:
            self.configure(cid, topic=topic, **settings)
        return cid

    def configure(self, cid: int, **values) -> None:
        form = {"topic": values.pop("topic", "How should AI behave?"), "is_open": "on"}
        for name, value in values.items():
            if isinstance(value, bool):
                if value:
                    form[name] = "on"
                else:
                    form.pop(name, None)
            else:
                form[name] = str(value)
        response = self.post(f"/admin/c/{cid}/config", form)
        assert response.status_code == 303, response.text

    def seed(self, cid: int, *texts: str) -> list[int]:
        numbers = []
        for text in texts:
            response = self.post(f"/admin/c/{cid}/seeds", {"text": text})
            assert response.status_code == 303, response.text
            numbers.append(int(response.headers["location"].split("seeded=")[1]))
        return numbers


def make_user(app, role: str) -> str:
    email = f"{role}{next(_counter)}-{uuid.uuid4().hex[:6]}@example.org"
    with app.state.sessions() as db:
        accounts.create_user(db, email, PASSWORD, role)
        db.commit()
    return email


def login(app, email: str) -> Staff:
    client = TestClient(app)
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return Staff(client, email)


@pytest.fixture(scope="session")
def owner(app) -> Staff:
    """One logged-in owner per database (argon2 is slow on purpose: log in once, not per test)."""
    return login(app, make_user(app, "owner"))


@pytest.fixture(scope="session")
def moderator(app) -> Staff:
    return login(app, make_user(app, "moderator"))


@pytest.fixture
def new_staff(app):
    """``new_staff(role)``: a fresh account, logged in (for tests that end or change their session)."""
    return lambda role: login(app, make_user(app, role))


@dataclass
class Visitor:
    """A participant using the HTML pages with a cookie (no JavaScript)."""

    client: TestClient
    cid: int
    csrf: str = ""

    def page(self, **params) -> str:
        response = self.client.get(f"/c/{self.cid}", params=params)
        assert response.status_code == 200, response.text
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
        self.csrf = found.group(1) if found else self.csrf  # pages without a form (end page) keep the last
        return response.text

    def current(self) -> int | None:
        match = re.search(r'name="statement" value="(\d+)"', self.page())
        return int(match.group(1)) if match else None

    def post(self, path: str, data: dict, **kwargs):
        self.page()
        data = {"csrf_token": self.csrf, **data}
        return self.client.post(f"/c/{self.cid}{path}", data=data, follow_redirects=False, **kwargs)

    def vote(self, value: int = 1, statement: int | None = None, important: bool = False):
        statement = self.current() if statement is None else statement
        data = {"statement": statement, "vote": value} | ({"important": "true"} if important else {})
        return self.post("/vote", data)

    def vote_all(self, value: int = 1) -> int:
        n = 0
        while (statement := self.current()) is not None:
            assert self.vote(value, statement).status_code == 303
            n += 1
        return n

    def write(self, text: str, confirm: bool = False):
        return self.post("/statements", {"text": text} | ({"confirm": "true"} if confirm else {}))


@pytest.fixture
def visitor(app):
    def make(cid: int) -> Visitor:
        return Visitor(TestClient(app), cid)

    return make


def report_text(app, client, cid: int, page: str = "report", **params) -> str:
    """A report page (``report`` or ``me``) once the background job has analysed the current votes
    (``jobs.py``: the first request only asks for it)."""
    client.get(f"/c/{cid}/{page}", params=params)
    app.state.jobs.join()
    response = client.get(f"/c/{cid}/{page}", params=params)
    assert response.status_code == 200, response.text
    return response.text


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module (a module may override it with its own flags)."""
    from playwright.sync_api import sync_playwright

    from tests.consultation.live_server import ARGS, CHROMIUM

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where screenshots go: ``$CCAI_TEST_ARTEFACTS``, else a temporary folder."""
    folder = Path(os.environ.get("CCAI_TEST_ARTEFACTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
