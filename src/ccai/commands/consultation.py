"""CLI commands of the consultation stage (thin wrappers over `ccai.consultation`)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ccai.commands._common import command, console, user_errors

HOME_HELP = (
    "Data directory for the default SQLite database and the secret key ($CCAI_HOME, ~/.local/share/ccai)."
)
DB_HELP = "SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db ($DATABASE_URL; default: SQLite in --home)."


def _settings(home: Path | None, database_url: str | None, **overrides):
    from ccai.consultation.web.app import WebSettings

    if database_url:
        os.environ["DATABASE_URL"] = database_url
    return WebSettings.from_env(home, **overrides)


def _session(home: Path | None, database_url: str | None):
    from sqlalchemy.orm import Session

    from ccai.consultation import store

    engine = store.make_engine(_settings(home, database_url).database_url)
    store.migrate(engine)
    return Session(engine)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the `ccai` app."""

    @command(app, "serve", no_args_is_help=False)
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for every interface)."),
        port: int = typer.Option(8000, help="TCP port."),
        workers: int = typer.Option(1, help="Worker processes (use PostgreSQL when more than one)."),
        home: Path = typer.Option(None, help=HOME_HELP),
        database_url: str = typer.Option(None, help=DB_HELP),
        near_duplicates: bool = typer.Option(True, help="Load the bundled MiniLM for near-duplicate hints."),
        secure_cookies: bool = typer.Option(
            False, help="Served over HTTPS (e.g. behind a TLS proxy): Secure cookies, and embeds work."
        ),
        redis_url: str = typer.Option(
            None,
            help="Redis shared by every server process: limits and the report queue ($CCAI_REDIS_URL; "
            "run `ccai worker` beside). Without it: this process's memory and a report thread.",
        ),
    ) -> None:
        """Run the consultation web app (participant pages, moderation, report, JSON API).

        The schema is created or upgraded (Alembic) before the server starts. Create an owner first
        with `ccai users create`, then open http://127.0.0.1:8000/admin. The JSON API is described at
        /openapi.json.

        Example: ccai serve --port 8000
        Example: DATABASE_URL=postgresql+psycopg://postgres@localhost/ccai ccai serve --workers 2
        """
        import uvicorn

        from ccai.consultation import store

        with user_errors():
            settings = _settings(home, database_url)
            store.migrate(store.make_engine(settings.database_url))
            os.environ["DATABASE_URL"] = settings.database_url
            os.environ["CCAI_SECRET_KEY"] = settings.secret_key
            os.environ["CCAI_NEAR_DUPLICATES"] = "1" if near_duplicates else "0"
            os.environ["CCAI_SECURE_COOKIES"] = "1" if secure_cookies else "0"
            if redis_url:
                os.environ["CCAI_REDIS_URL"] = redis_url
            where = settings.database_url.split("@")[-1]  # never print a password
            console.print(f"ccai consultation on http://{host}:{port}  (database: {where})")
            uvicorn.run(
                "ccai.consultation.web.server:app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="info",
                access_log=False,
            )

    @command(app, "worker", no_args_is_help=False)
    def worker(
        redis_url: str = typer.Option(None, help="Redis with the report queue ($CCAI_REDIS_URL)."),
        prefix: str = typer.Option(None, help="The servers' $CCAI_REDIS_PREFIX (default: ccai)."),
        burst: bool = typer.Option(False, help="Stop once the queue is empty."),
        database_url: str = typer.Option(None, help="The servers' database ($DATABASE_URL)."),
    ) -> None:
        """Compute live reports for every server on this Redis (a background job library: RQ).

        Servers started with CCAI_REDIS_URL never analyse votes inside a request: they queue a job per
        new state of a conversation, and a worker computes it and keeps it in the database, where every
        server reads it. Run one or more beside `ccai serve`, with the servers' DATABASE_URL.

        Example: CCAI_REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=postgresql+psycopg://... ccai worker
        """
        from ccai.consultation import jobs

        with user_errors():
            url = redis_url or os.environ.get("CCAI_REDIS_URL", "")
            if not url:
                raise ValueError("worker: give --redis-url or set CCAI_REDIS_URL (redis://127.0.0.1:6379/0)")
            if database_url:
                os.environ["DATABASE_URL"] = database_url
            if not os.environ.get("DATABASE_URL"):
                raise ValueError("worker: give --database-url or set DATABASE_URL (the servers' database)")
            name = jobs.queue_name(prefix or os.environ.get("CCAI_REDIS_PREFIX", "ccai"))
            console.print(f"ccai worker on queue {name} ({url.split('@')[-1]})")
            jobs.work(url, name, burst=burst)

    users = typer.Typer(help="Moderator and owner accounts.", no_args_is_help=True)
    app.add_typer(users, name="users")

    @command(users, "create")
    def create_user(
        email: str = typer.Argument(..., help="Login email."),
        role: str = typer.Option(
            "moderator",
            help="owner (creates and configures conversations), moderator (every conversation) or member "
            "(moderates the conversations an owner grants on its page).",
        ),
        password: str = typer.Option(
            ...,
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="At least 8 characters (prompted when not given).",
        ),
        home: Path = typer.Option(None, help=HOME_HELP),
        database_url: str = typer.Option(None, help=DB_HELP),
    ) -> None:
        """Create a login for a moderator or an owner (the password is stored as an argon2 hash).

        Example: ccai users create alice@example.org --role owner
        """
        from ccai.consultation import accounts

        with user_errors(), _session(home, database_url) as db:
            user = accounts.create_user(db, email, password, role)
            db.commit()
            console.print(f"created {user.role} {user.email} (id {user.id})")

    @command(app, "import-polis")
    def import_polis(
        path: Path = typer.Argument(..., help="A Polis export folder (comments.csv, votes.csv, ...)."),
        topic: str = typer.Option(
            None, help="Topic of the new conversation (default: summary.csv's, else the README's title)."
        ),
        public: bool = typer.Option(
            False, "--public", help="List it on the public page (imports are private: reached by link)."
        ),
        comments: str = typer.Option(
            None, help="Another comments file in the folder, e.g. clean_comments.csv."
        ),
        participants_votes: str = typer.Option(
            None, help="Another participants-votes file, e.g. clean_votes.csv."
        ),
        home: Path = typer.Option(None, help=HOME_HELP),
        database_url: str = typer.Option(None, help=DB_HELP),
    ) -> None:
        """Load a Polis export into a new closed, private conversation, keeping statement and participant ids.

        Example: ccai import-polis ../shared/data/polis-opendata/bg2050-volunteers
        """
        from ccai.consultation import exchange
        from ccai.formats.polis import read_polis_export

        with user_errors(), _session(home, database_url) as db:
            export = read_polis_export(path, comments=comments, participants_votes=participants_votes)
            conversation = exchange.import_export(
                db, export, topic=topic or exchange.import_title(export, path), private=not public
            )
            db.commit()
            console.print(
                f"imported conversation {conversation.id} (“{conversation.topic}”, "
                f"{'public' if public else 'private'}): {len(export.statements)} statements, "
                f"{len(export.votes)} votes, {len(export.participants)} participants "
                f"(open it at /c/{conversation.id}, report at /c/{conversation.id}/report)"
            )

    @command(app, "export-polis")
    def export_polis(
        conversation_id: int = typer.Argument(..., help="The conversation's id."),
        out: Path = typer.Argument(..., help="The zip file to write (the five Polis CSV files)."),
        home: Path = typer.Option(None, help=HOME_HELP),
        database_url: str = typer.Option(None, help=DB_HELP),
    ) -> None:
        """Write a conversation as a Polis export zip (comments, votes, participants-votes, summary, groups).

        Example: ccai export-polis 1 conversation-1.zip
        """
        from ccai.consultation import exchange, service

        with user_errors(), _session(home, database_url) as db:
            conversation = service.get_conversation(db, conversation_id)
            exchange.export_zip(db, conversation, out)
            console.print(f"wrote {out}")
