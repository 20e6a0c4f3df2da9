"""The organiser's tools for one conversation: its statement table, deleting it, editing its questions.

Kept apart from ``service.py`` (what participants and moderators do while a conversation runs): these
are the owner's bookkeeping, read-mostly or rare, and each is one unit of work the caller commits (or
rolls back, leaving nothing). Refusals are :class:`rules.RuleError` with a ``field`` value naming the form
field at fault, so a page can mark that field and keep what was typed.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from ccai.consultation import rules
from ccai.consultation.rules import Conflict, NotFound, RuleError
from ccai.consultation.service import latest_votes, questions
from ccai.consultation.store import Answer, Base, Conversation, Participant, Question, Statement, Vote

STATUSES = {"all": None, "pending": 0, "accepted": 1, "rejected": -1}
SORTS = ("number", "votes", "agree", "disagree", "important", "newest")
PAGE_SIZE = 100


# ---------------------------------------------------------------- the statement table


@dataclass(frozen=True)
class StatementRow:
    number: int
    text: str
    original_text: str | None
    moderation: int
    mod_reason: str
    is_seed: bool
    is_meta: bool
    duplicate_of: int | None  # the other statement's number
    author: int | None  # the author's participant number (None: a seed)
    created_ms: int | None
    agree: int
    disagree: int
    passed: int
    important: int

    @property
    def seen(self) -> int:
        return self.agree + self.disagree + self.passed

    @property
    def agree_share(self) -> float:
        return self.agree / self.seen if self.seen else 0.0


@dataclass(frozen=True)
class StatementTable:
    rows: list[StatementRow]
    matching: int  # rows under the filter (all pages)
    page: int
    pages: int
    by_status: dict[int, int]  # moderation -> statements (whole conversation)
    participants: int
    voters: int
    votes: int  # current votes (the latest per participant and statement)
    important: int  # current votes marked important


def _check_choice(value: str, allowed, field: str) -> str:
    if value not in allowed:
        names = ", ".join(allowed)
        raise RuleError(
            "invalid_choice", f"{field}: choose one of {names}", field=field, allowed=names, value=value[:40]
        )
    return value


def statement_table(
    db: Session,
    conversation: Conversation,
    status: str = "all",
    query: str = "",
    sort: str = "number",
    page: int = 1,
    size: int = PAGE_SIZE,
) -> StatementTable:
    """One page of the conversation's statements with their current votes, filtered and sorted in SQL.

    Votes count as the routing and the report count them: each participant's latest vote on a statement.
    ``query`` matches text or original wording, case-insensitively, as plain text (``%`` and ``_`` too).
    """
    _check_choice(status, STATUSES, "status")
    _check_choice(sort, SORTS, "sort")
    if len(query) > 200:
        raise RuleError("query_too_long", "q: at most 200 characters", field="q")
    cid = conversation.id
    current = latest_votes(cid).subquery()
    tally = (
        sa.select(
            current.c.statement_id.label("sid"),
            sa.func.sum(sa.case((current.c.vote == rules.AGREE, 1), else_=0)).label("agree"),
            sa.func.sum(sa.case((current.c.vote == rules.DISAGREE, 1), else_=0)).label("disagree"),
            sa.func.sum(sa.case((current.c.vote == 0, 1), else_=0)).label("passed"),
            sa.func.sum(sa.case((current.c.important.is_(True), 1), else_=0)).label("important"),
        )
        .group_by(current.c.statement_id)
        .subquery()
    )
    author = aliased(Participant)
    original = aliased(Statement)
    agree = sa.func.coalesce(tally.c.agree, 0)
    disagree = sa.func.coalesce(tally.c.disagree, 0)
    passed = sa.func.coalesce(tally.c.passed, 0)
    important = sa.func.coalesce(tally.c.important, 0)
    where = [Statement.conversation_id == cid]
    if STATUSES[status] is not None:
        where.append(Statement.moderation == STATUSES[status])
    if query.strip():
        pattern = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            sa.or_(
                Statement.text.ilike(pattern, escape="\\"),
                Statement.original_text.ilike(pattern, escape="\\"),
            )
        )
    seen = agree + disagree + passed
    order = {
        "number": [Statement.number],
        "newest": [Statement.number.desc()],
        "votes": [seen.desc(), Statement.number],
        "agree": [(agree * 1.0 / sa.func.nullif(seen, 0)).desc().nulls_last(), Statement.number],
        "disagree": [(disagree * 1.0 / sa.func.nullif(seen, 0)).desc().nulls_last(), Statement.number],
        "important": [important.desc(), Statement.number],
    }[sort]
    matching = db.scalar(sa.select(sa.func.count()).select_from(Statement).where(*where)) or 0
    pages = max(1, -(-matching // size))
    page = min(max(1, page), pages)
    rows = db.execute(
        sa.select(
            Statement.number,
            Statement.text,
            Statement.original_text,
            Statement.moderation,
            Statement.mod_reason,
            Statement.is_seed,
            Statement.is_meta,
            original.number,
            author.number,
            Statement.created_ms,
            agree,
            disagree,
            passed,
            important,
        )
        .outerjoin(tally, tally.c.sid == Statement.id)
        .outerjoin(author, author.id == Statement.author_id)
        .outerjoin(original, original.id == Statement.duplicate_of)
        .where(*where)
        .order_by(*order)
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    by_status = dict(
        db.execute(
            sa.select(Statement.moderation, sa.func.count())
            .where(Statement.conversation_id == cid)
            .group_by(Statement.moderation)
        ).all()
    )
    participants = db.scalar(sa.select(sa.func.count()).where(Participant.conversation_id == cid))
    voters = db.scalar(sa.select(sa.func.count(sa.distinct(current.c.participant_id))).select_from(current))
    votes, marked = db.execute(
        sa.select(
            sa.func.count(), sa.func.sum(sa.case((current.c.important.is_(True), 1), else_=0))
        ).select_from(current)
    ).one()
    return StatementTable(
        rows=[
            StatementRow(
                number=r[0],
                text=r[1],
                original_text=r[2] if r[2] and r[2] != r[1] else None,
                moderation=r[3],
                mod_reason=r[4] or "",
                is_seed=bool(r[5]),
                is_meta=bool(r[6]),
                duplicate_of=r[7],
                author=r[8],
                created_ms=r[9],
                agree=int(r[10]),
                disagree=int(r[11]),
                passed=int(r[12]),
                important=int(r[13]),
            )
            for r in rows
        ],
        matching=int(matching),
        page=page,
        pages=pages,
        by_status={int(k): int(v) for k, v in by_status.items()},
        participants=int(participants or 0),
        voters=int(voters or 0),
        votes=int(votes or 0),
        important=int(marked or 0),
    )


# ---------------------------------------------------------------- deleting a conversation


def _owned_tables() -> list[tuple[sa.Table, sa.ColumnElement]]:
    """Every table holding rows of a conversation, children first, with how to find those rows.

    Walked from the schema's foreign keys rather than listed by hand, so a table added later (with a
    ``conversation_id`` or a key to such a table) is deleted too, and the test that checks every table
    for leftovers covers it. The clauses use a ``:cid`` bind parameter.
    """
    import ccai.consultation.judging_store  # noqa: F401  (its tables belong to the metadata too)

    conversations = Base.metadata.tables["conversations"]
    cid = sa.bindparam("cid", type_=sa.Integer)
    owned: dict[str, sa.ColumnElement] = {}
    for table in Base.metadata.sorted_tables:  # parents before children
        if "conversation_id" in table.c:
            owned[table.name] = table.c.conversation_id == cid
            continue
        for fk in table.foreign_keys:
            parent = fk.column.table
            if parent is not conversations and parent.name in owned:
                owned[table.name] = fk.parent.in_(sa.select(fk.column).where(owned[parent.name]))
                break
    tables = Base.metadata.tables
    return [(tables[name], clause) for name, clause in reversed(owned.items())]


@dataclass(frozen=True)
class Footprint:
    """What deleting a conversation removes (shown on the confirmation page)."""

    statements: int
    participants: int
    votes: int
    questions: int
    answers: int


def footprint(db: Session, conversation: Conversation) -> Footprint:
    cid = conversation.id

    def count(model, *where) -> int:
        return int(db.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)

    return Footprint(
        statements=count(Statement, Statement.conversation_id == cid),
        participants=count(Participant, Participant.conversation_id == cid),
        votes=count(Vote, Vote.conversation_id == cid),
        questions=count(Question, Question.conversation_id == cid),
        answers=count(
            Answer,
            Answer.question_id.in_(sa.select(Question.id).where(Question.conversation_id == cid)),
        ),
    )


def delete_conversation(db: Session, conversation: Conversation, typed_title: str) -> dict[str, int]:
    """Delete the conversation and every row that belongs to it, in the caller's one transaction.

    ``typed_title`` must be the topic exactly (surrounding spaces aside): a deliberate act, not a
    click. Rows are deleted children first by explicit statements, not left to ``ON DELETE CASCADE``,
    so the outcome does not hang on SQLite's foreign-key pragma; if any statement fails the caller's
    rollback leaves everything as it was. Returns rows deleted per table.
    """
    if typed_title.strip() != conversation.topic.strip():
        raise RuleError(
            "confirm_title", "confirm: type the conversation's title exactly to delete it", field="confirm"
        )
    cid = conversation.id
    deleted = {}
    db.flush()
    for table, clause in _owned_tables():
        if table.name == "statements":  # its own key (duplicate_of) points within the conversation
            db.execute(sa.update(table).where(clause).values(duplicate_of=None), {"cid": cid})
        result = db.execute(sa.delete(table).where(clause), {"cid": cid})
        deleted[table.name] = result.rowcount
    deleted["conversations"] = db.execute(sa.delete(Conversation).where(Conversation.id == cid)).rowcount
    db.expunge(conversation)
    return deleted


# ---------------------------------------------------------------- editing and reordering questions


def get_question(db: Session, conversation: Conversation, question_id: int) -> Question:
    question = db.get(Question, question_id)
    if question is None or question.conversation_id != conversation.id:
        raise NotFound("no_question", f"No question {question_id} in conversation {conversation.id}.")
    return question


def edit_question(
    db: Session, question: Question, text: str, choices: str, eligible_choices: str = ""
) -> Question:
    """New wording, choices or admitting answers for a question.

    A choice someone already gave cannot be removed (their answer would point at nothing: keep it, or
    rename it in a new question). Changing which answers admit applies to people screened from now on;
    those already admitted or turned away keep their standing (their votes stand as cast).
    """
    text = text.strip()
    if not text:
        raise RuleError("question_text", "text: the question needs a text", field="text")
    if len(text) > 1000:
        raise RuleError("question_text_long", "text: at most 1,000 characters", field="text")
    options = rules.parse_choices(choices)
    if len(options) < 2 or len(set(options)) != len(options):
        raise RuleError(
            "question_choices", "choices: at least two different choices, one per line", field="choices"
        )
    admitted = rules.parse_choices(eligible_choices)
    if question.kind == "screening" and (not admitted or not set(admitted) <= set(options)):
        raise RuleError(
            "question_admitting",
            "eligible_choices: screening questions need admitting answers chosen from the choices",
            field="eligible_choices",
        )
    given = set(db.scalars(sa.select(Answer.answer).where(Answer.question_id == question.id).distinct()))
    lost = sorted(given - set(options))
    if lost:
        raise Conflict(
            "choice_answered",
            f"choices: {', '.join(lost)} already chosen by participants; keep it",
            field="choices",
            choices=", ".join(lost),
        )
    question.text = text
    question.choices = "\n".join(options)
    question.eligible_choices = "\n".join(admitted) if question.kind == "screening" else ""
    db.flush()
    return question


def move_question(db: Session, conversation: Conversation, question: Question, direction: str) -> None:
    """Swap a question with its neighbour (``up`` or ``down``); positions are renumbered 0..n-1."""
    _check_choice(direction, ("up", "down"), "direction")
    ordered = questions(db, conversation.id)
    at = next(i for i, q in enumerate(ordered) if q.id == question.id)
    to = at - 1 if direction == "up" else at + 1
    if 0 <= to < len(ordered):
        ordered[at], ordered[to] = ordered[to], ordered[at]
    for position, q in enumerate(ordered):
        q.position = position
    db.flush()
