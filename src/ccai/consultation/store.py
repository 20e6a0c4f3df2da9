"""The consultation database: SQLAlchemy 2 tables, the engine, and the queries the service needs.

SQLite (a file in a data directory, WAL mode) is the bundled default; ``postgresql+psycopg://...`` is the
path for real deployments. The schema is only ever made by the Alembic migrations in ``migrations/``
(:func:`migrate`), so a database created today upgrades cleanly tomorrow.

Votes are an append-only log: a re-vote is a new row and the latest row per (participant, statement)
wins, as in Polis exports. Screening and demographic answers live in their own table, never beside votes.
No IP address is stored anywhere.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; BIGINT elsewhere.
BigId = BigInteger().with_variant(Integer, "sqlite")


def now_ms() -> int:
    """Milliseconds since the epoch: the unit of Polis export timestamps, kept exact in the database."""
    return int(time.time() * 1000)


def token_digest(token: str) -> str:
    """Bearer tokens are stored hashed, so a leaked database does not let anyone vote as a participant."""
    return hashlib.sha256(token.encode()).hexdigest()


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # owner | moderator | member (conversation_roles)
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class LoginSession(Base):
    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    expires_ms: Mapped[int] = mapped_column(BigInteger)


class Invite(Base):
    """A single-use, expiring link (only its token's hash is kept) that creates an account of ``role``."""

    __tablename__ = "invites"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(String(200), default="", server_default="")  # whom it is for
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    expires_ms: Mapped[int] = mapped_column(BigInteger)
    used_ms: Mapped[int | None] = mapped_column(BigInteger)
    used_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # set for a ``member`` invite: the conversation the new account will moderate
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))


class ConversationRole(Base):
    """A ``member`` user's right to moderate one conversation (owners and moderators need none)."""

    __tablename__ = "conversation_roles"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(20), default="moderator", server_default="moderator")
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Conversation(Base):
    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")  # Markdown, sanitised when rendered
    consent_text: Mapped[str] = mapped_column(Text, default="")
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    strict_moderation: Mapped[bool] = mapped_column(Boolean, default=False)
    unlock_threshold: Mapped[int] = mapped_column(Integer, default=30)
    max_length: Mapped[int] = mapped_column(Integer, default=280)
    seed_first: Mapped[bool] = mapped_column(Boolean, default=False)
    xid_required: Mapped[bool] = mapped_column(Boolean, default=False)
    use_xid_allowlist: Mapped[bool] = mapped_column(Boolean, default=False)
    url: Mapped[str] = mapped_column(String(500), default="")
    # archived: closed and off the public list, its report still reachable by link; private: off the
    # public list, reachable only by its link (migration 0005)
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa.false())
    is_private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa.false())
    import_meta: Mapped[str] = mapped_column(Text, default="")  # JSON: generation + file layout of an import
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    # bumped whenever a statement is added or its moderation/wording/duplicate/meta state changes: the
    # routing cache (routing.py) reloads the statement list only then
    statements_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


# what a new conversation starts with (CCAI's unlock threshold of 30 votes); set on the object at once,
# because the checks in service.configure run before the row is flushed
CONVERSATION_DEFAULTS: dict[str, object] = {
    "description": "",
    "consent_text": "",
    "is_open": True,
    "strict_moderation": False,
    "unlock_threshold": 30,
    "max_length": 280,
    "seed_first": False,
    "xid_required": False,
    "use_xid_allowlist": False,
    "url": "",
    "is_archived": False,
    "is_private": False,
    "import_meta": "",
    "statements_version": 0,
}


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (
        UniqueConstraint("conversation_id", "number"),
        Index("ix_participants_conversation_xid", "conversation_id", "xid"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # the Polis participant id inside the conversation
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)  # None for imported people
    xid: Mapped[str | None] = mapped_column(String(200))
    group_id: Mapped[int | None] = mapped_column(Integer)  # group from an imported export
    eligible: Mapped[bool | None] = mapped_column(Boolean)  # None until screened (or no screening)
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Statement(Base):
    __tablename__ = "statements"
    __table_args__ = (
        UniqueConstraint("conversation_id", "number"),
        Index("ix_statements_conversation_key", "conversation_id", "text_key"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # the Polis comment id inside the conversation
    text: Mapped[str] = mapped_column(Text)
    original_text: Mapped[str] = mapped_column(Text)
    text_key: Mapped[str] = mapped_column(String(64))  # digest of the normalised text: exact duplicates
    author_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id", ondelete="SET NULL"))
    moderation: Mapped[int] = mapped_column(SmallInteger, default=0)  # 1 accepted, 0 pending, -1 rejected
    mod_reason: Mapped[str] = mapped_column(Text, default="")
    moderated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    moderated_ms: Mapped[int | None] = mapped_column(BigInteger)
    rewritten_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    rewritten_ms: Mapped[int | None] = mapped_column(BigInteger)
    is_meta: Mapped[bool] = mapped_column(Boolean, default=False)
    is_seed: Mapped[bool] = mapped_column(Boolean, default=False)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("statements.id", ondelete="SET NULL"))
    extra: Mapped[str] = mapped_column(Text, default="")  # JSON: an import's other comment columns, verbatim
    created_ms: Mapped[int | None] = mapped_column(BigInteger, default=now_ms)


class Vote(Base):
    __tablename__ = "votes"
    __table_args__ = (
        Index("ix_votes_participant_statement", "participant_id", "statement_id"),
        Index("ix_votes_conversation", "conversation_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id", ondelete="CASCADE"))
    vote: Mapped[int] = mapped_column(SmallInteger)  # +1 agree, -1 disagree, 0 pass (export sign)
    important: Mapped[bool] = mapped_column(Boolean, default=False)
    created_ms: Mapped[int | None] = mapped_column(BigInteger, default=now_ms)


class StatementVector(Base):
    """A statement's near-duplicate embedding (float32 bytes), kept so no worker re-embeds after a restart;
    ``text_key`` says which wording it embeds (a rewrite makes it stale)."""

    __tablename__ = "statement_vectors"
    statement_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("statements.id", ondelete="CASCADE"), primary_key=True
    )
    text_key: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(100))
    vector: Mapped[bytes] = mapped_column(sa.LargeBinary)


class StoredReport(Base):
    """The latest live report of a conversation, as JSON, computed by the background worker (``jobs.py``);
    ``version`` names the votes and moderation state it was computed from (``live_report.version``)."""

    __tablename__ = "live_reports"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[str] = mapped_column(String(200))
    computed_ms: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text)


class XidAllowed(Base):
    __tablename__ = "xid_allowlist"
    __table_args__ = (UniqueConstraint("conversation_id", "xid"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    xid: Mapped[str] = mapped_column(String(200))


class Question(Base):
    """A screening question (decides eligibility) or a demographic one (stored, never used for routing)."""

    __tablename__ = "questions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))  # screening | demographic
    position: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text)
    choices: Mapped[str] = mapped_column(Text)  # one choice per line
    eligible_choices: Mapped[str] = mapped_column(Text, default="")  # screening: choices that admit


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("question_id", "participant_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    answer: Mapped[str] = mapped_column(String(300))
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class ImportedSummary(Base):
    """Key/value rows of an imported ``summary.csv``, kept so an export gives back the same content."""

    __tablename__ = "imported_summary"
    __table_args__ = (UniqueConstraint("conversation_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(Text)


# ---------------------------------------------------------------- engine and migrations

MIGRATIONS = Path(__file__).with_name("migrations")


def default_url(data_dir: Path) -> str:
    """The bundled default: one SQLite file in the data directory."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'consultation.sqlite3'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets readers run while one writer commits; synchronous=NORMAL is durable against a killed
    # process (the WAL is in the OS page cache), and only an OS crash could lose the last commits.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
    # Python's sqlite3 module otherwise opens transactions itself, only before INSERT/UPDATE/DELETE: a
    # SAVEPOINT then ran with no enclosing transaction, its RELEASE committed, and a refused request kept
    # half of its rows. With the module's handling off, SQLAlchemy's own BEGIN (below) encloses everything.
    dbapi_conn.isolation_level = None


#: execution option: begin SQLite transactions with BEGIN IMMEDIATE (see :func:`_sqlite_begin`)
WRITE_INTENT = "ccai_write_intent"


def _sqlite_begin(conn: sa.Connection) -> None:
    """Emit a real BEGIN when SQLAlchemy starts a transaction (the pysqlite recipe), except in AUTOCOMMIT.

    Why IMMEDIATE for writers (execution option :data:`WRITE_INTENT`): in WAL mode a transaction that has
    read and then writes fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT, no busy wait) if
    another connection committed in between, e.g. the report worker while a vote request ran. Taking the
    write lock at BEGIN makes such a request wait its turn (busy_timeout) instead. Readers stay deferred,
    so page views never queue behind each other."""
    options = conn.get_execution_options()
    if options.get("isolation_level") != "AUTOCOMMIT":
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_INTENT) else "BEGIN")


def make_engine(url: str, **kwargs) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL and foreign keys on every connection."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 10})
        # as many pooled connections as the thread pool has threads (40): no connect + PRAGMAs per request
        if sa.make_url(url).database not in (None, "", ":memory:"):
            kwargs.setdefault("pool_size", 40)
        engine = sa.create_engine(url, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_recycle", 1800)  # no pre-ping: it would double the vote path's round trips
    return sa.create_engine(url, **kwargs)


def alembic_config(engine: sa.Engine):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (the only way ccai creates or changes tables)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: sa.Engine, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def next_number(session: Session, model: type[Participant] | type[Statement], conversation_id: int) -> int:
    """The next per-conversation number (Polis ids start at 0)."""
    current = session.scalar(
        sa.select(sa.func.max(model.number)).where(model.conversation_id == conversation_id)
    )
    return 0 if current is None else current + 1
