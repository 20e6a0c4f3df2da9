"""What participants and moderators do, as functions over a database session.

The HTML pages and the JSON API both call these, so the two front ends cannot drift apart. Each function
checks the rules (``rules.py``), touches the tables (``store.py``) and raises a :class:`rules.RuleError`
(with an HTTP status) for anything it refuses; the caller commits. Statements and participants are named by
their per-conversation ``number`` (the Polis ids) everywhere outside the database.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from ccai.consultation import rules, store
from ccai.consultation.routing import RoutingCache
from ccai.consultation.rules import Conflict, Forbidden, Moderation, NotFound, RuleError, TooMany
from ccai.consultation.store import (
    Answer,
    Conversation,
    Participant,
    Question,
    Statement,
    StatementVector,
    User,
    Vote,
    XidAllowed,
    next_number,
    now_ms,
    token_digest,
)

MAX_SEED_ROWS = 5_000

# ---------------------------------------------------------------- conversations


def get_conversation(db: Session, conversation_id: int) -> Conversation:
    conversation = db.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("no_conversation", f"No conversation with id {conversation_id}.")
    return conversation


CONFIG_FIELDS = {
    "topic": str,
    "description": str,
    "consent_text": str,
    "is_open": bool,
    "strict_moderation": bool,
    "unlock_threshold": int,
    "max_length": int,
    "seed_first": bool,
    "xid_required": bool,
    "use_xid_allowlist": bool,
    "is_archived": bool,
    "is_private": bool,
}


def configure(conversation: Conversation, values: dict[str, object]) -> Conversation:
    """Apply configuration ``values`` (only the known fields, each checked) to the conversation."""
    for name, value in values.items():
        if name not in CONFIG_FIELDS:
            raise RuleError("unknown_field", f"unknown conversation setting {name!r}")
        if not isinstance(value, CONFIG_FIELDS[name]) or (
            CONFIG_FIELDS[name] is int and isinstance(value, bool)
        ):
            raise RuleError("invalid_field", f"{name} must be {CONFIG_FIELDS[name].__name__}, got {value!r}")
        setattr(conversation, name, value)
    if conversation.is_archived:  # archived means closed: no new participants, votes or statements
        conversation.is_open = False
    if not (conversation.topic or "").strip() or len(conversation.topic) > 300:
        raise RuleError("invalid_field", "topic must have 1 to 300 characters")
    if not 0 <= conversation.unlock_threshold <= 10_000:
        raise RuleError("invalid_field", "unlock_threshold must be between 0 and 10000")
    if not 20 <= conversation.max_length <= 1_000:
        raise RuleError("invalid_field", "max_length must be between 20 and 1000 characters")
    for name in ("description", "consent_text"):
        if len(getattr(conversation, name) or "") > 20_000:
            raise RuleError("invalid_field", f"{name} is longer than 20000 characters")
    return conversation


def listed_conversations(db: Session, limit: int = 200) -> list[Conversation]:
    """The public list: neither archived nor private (those are reached only by their link); open first."""
    return list(
        db.scalars(
            sa.select(Conversation)
            .where(Conversation.is_archived.is_(False), Conversation.is_private.is_(False))
            .order_by(Conversation.is_open.desc(), Conversation.id.desc())
            .limit(limit)
        )
    )


def create_conversation(db: Session, owner: User, values: dict[str, object]) -> Conversation:
    conversation = Conversation(owner_id=owner.id, **store.CONVERSATION_DEFAULTS)
    configure(conversation, values)
    db.add(conversation)
    db.flush()
    return conversation


def set_allowlist(db: Session, conversation: Conversation, xids: list[str]) -> int:
    db.execute(sa.delete(XidAllowed).where(XidAllowed.conversation_id == conversation.id))
    clean = sorted({x.strip() for x in xids if x.strip()})
    db.add_all(XidAllowed(conversation_id=conversation.id, xid=x[:200]) for x in clean)
    return len(clean)


def add_question(
    db: Session, conversation: Conversation, kind: str, text: str, choices: str, eligible_choices: str = ""
) -> Question:
    """A screening question (with the answers that admit) or a demographic one."""
    if kind not in ("screening", "demographic"):
        raise RuleError("invalid_kind", "kind must be 'screening' or 'demographic'", field="kind")
    options = rules.parse_choices(choices)
    admitted = rules.parse_choices(eligible_choices)
    if not text.strip():
        raise RuleError("question_text", "text: the question needs a text", field="text")
    if len(text.strip()) > 1000:
        raise RuleError("question_text_long", "text: at most 1,000 characters", field="text")
    if len(options) < 2 or len(set(options)) != len(options):
        raise RuleError(
            "question_choices", "choices: at least two different choices, one per line", field="choices"
        )
    if kind == "screening" and (not admitted or not set(admitted) <= set(options)):
        raise RuleError(
            "question_admitting",
            "eligible_choices: screening questions need admitting answers chosen from the choices",
            field="eligible_choices",
        )
    position = len(questions(db, conversation.id))
    question = Question(
        conversation_id=conversation.id,
        kind=kind,
        position=position,
        text=text.strip(),
        choices="\n".join(options),
        eligible_choices="\n".join(admitted),
    )
    db.add(question)
    db.flush()
    return question


def questions(db: Session, conversation_id: int, kind: str | None = None) -> list[Question]:
    query = sa.select(Question).where(Question.conversation_id == conversation_id)
    if kind:
        query = query.where(Question.kind == kind)
    return list(db.scalars(query.order_by(Question.position, Question.id)))


# ---------------------------------------------------------------- participants


def _insert_numbered(db: Session, model, conversation_id: int, make):
    """Insert ``make()`` with the next per-conversation number; retry when a concurrent insert took it."""
    for _attempt in range(8):
        row = make()
        row.number = next_number(db, model, conversation_id)
        try:
            with db.begin_nested():
                db.add(row)
                db.flush()
            return row
        except sa.exc.IntegrityError:
            continue
    raise Conflict("busy", "The server is busy numbering new entries; try again.")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def find_participant(db: Session, conversation_id: int, token: str | None) -> Participant | None:
    if not token:
        return None
    return db.scalar(
        sa.select(Participant).where(
            Participant.token_hash == token_digest(token), Participant.conversation_id == conversation_id
        )
    )


def join(
    db: Session,
    conversation: Conversation,
    token: str,
    xid: str | None = None,
    before_create: Callable[[], None] | None = None,
) -> Participant:
    """The participant holding ``token``, created on first use (checking the XID rules).

    An XID names one person: a visit with a known XID and a new token (cleared cookies, another device)
    returns that same participant, now holding the new token, so screening answers and votes follow the
    person and clearing cookies does not let anyone past the screening. A closed conversation takes no
    new participants. ``before_create`` runs just before a new participant is made (the rate limits).
    """
    existing = find_participant(db, conversation.id, token)
    if existing is not None:
        return existing
    allowlist = None
    if conversation.use_xid_allowlist:
        allowlist = set(
            db.scalars(sa.select(XidAllowed.xid).where(XidAllowed.conversation_id == conversation.id))
        )
    xid = rules.check_xid(xid, conversation.xid_required, allowlist)
    if xid is not None:
        known = db.scalar(
            sa.select(Participant)
            .where(Participant.conversation_id == conversation.id, Participant.xid == xid)
            .order_by(Participant.id)
            .limit(1)
        )
        if known is not None:
            known.token_hash = token_digest(token)  # the old token stops working: one person, one key
            return known
    rules.check_open(conversation.is_open)
    if before_create is not None:
        before_create()
    screened = bool(questions(db, conversation.id, "screening"))
    return _insert_numbered(
        db,
        Participant,
        conversation.id,
        lambda: Participant(
            conversation_id=conversation.id,
            token_hash=token_digest(token),
            xid=xid,
            eligible=None if screened else True,
        ),
    )


def answer_questions(
    db: Session, conversation: Conversation, participant: Participant, answers: dict[int, str]
) -> bool:
    """Store screening/demographic answers (apart from votes); returns whether the participant is eligible."""
    asked = {q.id: q for q in questions(db, conversation.id)}
    for qid, answer in answers.items():
        question = asked.get(qid)
        if question is None:
            raise RuleError("invalid_field", f"question {qid} does not belong to this conversation")
        if answer not in rules.parse_choices(question.choices):
            raise RuleError("invalid_field", f"answer {answer!r} is not a choice of question {qid}")
    screening = {
        q.id: set(rules.parse_choices(q.eligible_choices)) for q in asked.values() if q.kind == "screening"
    }
    missing = [qid for qid in screening if qid not in answers]
    if missing and participant.eligible is None:
        raise RuleError("missing_answer", f"please answer every screening question (missing: {missing})")
    for qid, answer in answers.items():
        db.execute(
            sa.delete(Answer).where(Answer.question_id == qid, Answer.participant_id == participant.id)
        )
        db.add(Answer(question_id=qid, participant_id=participant.id, answer=answer))
    if participant.eligible is None:
        participant.eligible = rules.eligible(answers, screening)
    return bool(participant.eligible)


def answered(db: Session, participant_id: int) -> set[int]:
    """Ids of the questions this participant has answered."""
    return set(db.scalars(sa.select(Answer.question_id).where(Answer.participant_id == participant_id)))


# ---------------------------------------------------------------- statements and routing


def statements(db: Session, conversation_id: int) -> list[Statement]:
    return list(
        db.scalars(
            sa.select(Statement)
            .where(Statement.conversation_id == conversation_id)
            .order_by(Statement.number)
        )
    )


def statement_by_number(db: Session, conversation_id: int, number: int) -> Statement:
    statement = db.scalar(
        sa.select(Statement).where(Statement.conversation_id == conversation_id, Statement.number == number)
    )
    if statement is None:
        raise NotFound("no_statement", f"No statement {number} in conversation {conversation_id}.")
    return statement


def seen_ids(db: Session, participant_id: int) -> set[int]:
    return set(
        db.scalars(sa.select(Vote.statement_id).where(Vote.participant_id == participant_id).distinct())
    )


def latest_votes(conversation_id: int):
    """A select of the latest vote row per (participant, statement): the votes that count."""
    latest = (
        sa.select(sa.func.max(Vote.id).label("id"))
        .where(Vote.conversation_id == conversation_id)
        .group_by(Vote.participant_id, Vote.statement_id)
        .subquery()
    )
    return sa.select(Vote).join(latest, latest.c.id == Vote.id)


def tallies(db: Session, conversation_id: int) -> dict[int, tuple[int, int, int]]:
    """statement id -> (agree, disagree, seen) over current votes."""
    current = latest_votes(conversation_id).subquery()
    rows = db.execute(
        sa.select(current.c.statement_id, current.c.vote, sa.func.count()).group_by(
            current.c.statement_id, current.c.vote
        )
    )
    out: dict[int, list[int]] = {}
    for sid, vote, count in rows:
        entry = out.setdefault(sid, [0, 0, 0])
        entry[2] += count
        if vote == rules.AGREE:
            entry[0] += count
        elif vote == rules.DISAGREE:
            entry[1] += count
    return {sid: (a, d, s) for sid, (a, d, s) in out.items()}


@dataclass
class Progress:
    """Where a participant stands: the next statement (or None), how many are left, what is unlocked."""

    statement: Statement | None
    remaining: int
    votes_cast: int
    unlock_threshold: int
    eligible: bool | None
    is_open: bool

    @property
    def can_write(self) -> bool:
        return self.is_open and self.votes_cast >= self.unlock_threshold

    @property
    def votes_to_unlock(self) -> int:
        return max(0, self.unlock_threshold - self.votes_cast)


def progress(
    db: Session,
    conversation: Conversation,
    participant: Participant | None,
    seed: int = 0,
    cache: RoutingCache | None = None,
) -> Progress:
    """The next statement for ``participant`` by Polis priority routing, with the counts the page shows.

    The tallies come from ``cache`` (``routing.py``: kept per worker, brought up to date from the votes
    added since); without one, :func:`progress_by_recount` counts them afresh (the same draw)."""
    if cache is None:
        return progress_by_recount(db, conversation, participant, seed)
    state = cache.get(db, conversation)
    seen = seen_ids(db, participant.id) if participant else set()
    visible = state.visible(conversation.strict_moderation)
    pool = visible & ~np.isin(state.ids, np.fromiter(seen, np.int64, len(seen)))
    rng = rules.routing_rng(conversation.id, participant.id if participant else 0, len(seen), seed)
    k = rules.choose_index(
        pool,
        state.is_seed,
        state.agree,
        state.disagree,
        state.seen,
        state.is_meta,
        conversation.seed_first,
        rng,
    )
    return Progress(
        db.get(Statement, int(state.ids[k])) if k is not None else None,
        int(pool.sum()),
        len(seen),
        rules.effective_threshold(conversation.unlock_threshold, int(visible.sum())),
        participant.eligible if participant else None,
        conversation.is_open,
    )


def progress_by_recount(
    db: Session, conversation: Conversation, participant: Participant | None, seed: int = 0
) -> Progress:
    """:func:`progress` as it was: every statement loaded and every vote recounted per request (kept as
    the benchmark's baseline and as the reference the routing cache is tested against)."""
    all_statements = statements(db, conversation.id)
    counts = tallies(db, conversation.id)
    seen = seen_ids(db, participant.id) if participant else set()
    candidates = [
        rules.Candidate(
            s.id, s.moderation, s.is_seed, s.is_meta, s.duplicate_of, *counts.get(s.id, (0, 0, 0))
        )
        for s in all_statements
    ]
    pool = rules.routable(candidates, seen, conversation.strict_moderation)
    rng = rules.routing_rng(conversation.id, participant.id if participant else 0, len(seen), seed)
    chosen = rules.choose_next(candidates, seen, conversation.strict_moderation, conversation.seed_first, rng)
    by_id = {s.id: s for s in all_statements}
    available = len(rules.routable(candidates, set(), conversation.strict_moderation))
    return Progress(
        by_id[chosen.id] if chosen else None,
        len(pool),
        len(seen),
        rules.effective_threshold(conversation.unlock_threshold, available),
        participant.eligible if participant else None,
        conversation.is_open,
    )


def require_eligible(participant: Participant) -> None:
    if participant.eligible is None:
        raise Forbidden("screening_needed", "Please answer the screening questions first.")
    if not participant.eligible:
        raise Forbidden(
            "not_eligible", "Thank you for your interest; this conversation is for a different group."
        )


def cast_vote(
    db: Session,
    conversation: Conversation,
    participant: Participant,
    number: int,
    vote: object,
    important: bool = False,
) -> Vote:
    """Append one vote to the log (a re-vote is a new row; the latest counts)."""
    value = rules.validate_vote(vote)
    rules.check_open(conversation.is_open)
    require_eligible(participant)
    statement = statement_by_number(db, conversation.id, number)
    if not rules.visible(statement.moderation, conversation.strict_moderation):
        raise NotFound("no_statement", f"Statement {number} is not open for voting.")
    row = Vote(
        conversation_id=conversation.id,
        participant_id=participant.id,
        statement_id=statement.id,
        vote=value,
        important=bool(important),
        created_ms=now_ms(),
    )
    db.add(row)
    return row


# The rules of cast_vote in SQL (conversation open, participant eligible, statement visible: the SQL form of
# rules.check_open / require_eligible / rules.visible), for the two statements below.
VOTE_RULES = (
    Conversation.is_open.is_(True),
    Participant.eligible.is_(True),
    sa.or_(
        Statement.moderation == int(Moderation.ACCEPTED),
        sa.and_(Conversation.strict_moderation.is_(False), Statement.moderation == int(Moderation.PENDING)),
    ),
)

# One INSERT ... SELECT that only inserts when every rule holds, so the API's hot path is a single
# autocommitted round trip. When it inserts nothing, explain_vote says why.
VOTE_INSERT = (
    sa.insert(Vote)
    .from_select(
        ["conversation_id", "participant_id", "statement_id", "vote", "important", "created_ms"],
        sa.select(
            Conversation.id,
            Participant.id,
            Statement.id,
            sa.bindparam("vote", type_=sa.SmallInteger),
            sa.bindparam("important", type_=sa.Boolean),
            sa.bindparam("now", type_=sa.BigInteger),
        )
        .join(Participant, Participant.conversation_id == Conversation.id)
        .join(Statement, Statement.conversation_id == Conversation.id)
        .where(
            Conversation.id == sa.bindparam("cid"),
            Participant.token_hash == sa.bindparam("token_hash"),
            Statement.number == sa.bindparam("number"),
            *VOTE_RULES,
        ),
    )
    .returning(Vote.id)
)


def _vote_batch() -> sa.Select:
    """PostgreSQL: many votes in one statement (one commit), each row under the same rules.

    The parameters are arrays, one element per vote (:func:`vote_params` columns); the result has one row
    ``(i, id)`` per *accepted* vote, ``i`` its 1-based position. Ids are drawn from the sequence in that
    order (a later re-vote gets the larger id, so it is the one that counts) before the insert, so the
    answer can name them without relying on the order of ``RETURNING``.
    """
    columns = {
        "cid": sa.Integer,
        "token_hash": sa.String,
        "number": sa.Integer,
        "vote": sa.SmallInteger,
        "important": sa.Boolean,
        "now": sa.BigInteger,
    }
    arrays = (sa.cast(sa.bindparam(name), ARRAY(kind)) for name, kind in columns.items())
    v = sa.func.unnest(*arrays).table_valued(*columns, with_ordinality="i").render_derived().alias("v")
    accepted = (
        sa.select(
            v.c.i,
            sa.func.nextval(sa.func.pg_get_serial_sequence("votes", "id")).label("id"),
            Conversation.id.label("conversation_id"),
            Participant.id.label("participant_id"),
            Statement.id.label("statement_id"),
            v.c.vote,
            v.c.important,
            v.c.now,
        )
        .select_from(v)
        .join(Conversation, Conversation.id == v.c.cid)
        .join(
            Participant,
            (Participant.conversation_id == Conversation.id) & (Participant.token_hash == v.c.token_hash),
        )
        .join(Statement, (Statement.conversation_id == Conversation.id) & (Statement.number == v.c.number))
        .where(*VOTE_RULES)
        .order_by(v.c.i)  # PostgreSQL draws volatile outputs after the sort: ids follow the arrival order
        .cte("accepted")
    )
    names = ["id", "conversation_id", "participant_id", "statement_id", "vote", "important", "created_ms"]
    rows = sa.select(*(accepted.c[n] for n in names[:-1]), accepted.c.now).order_by(accepted.c.id)
    insert = sa.insert(Vote).from_select(names, rows).cte("inserted")
    return sa.select(accepted.c.i, accepted.c.id).add_cte(insert)


VOTE_BATCH = _vote_batch()


def vote_params(conversation_id: int, token: str, number: int, vote: object, important: bool) -> dict:
    """The bind parameters of :data:`VOTE_INSERT` (the vote checked first)."""
    return {
        "cid": conversation_id,
        "token_hash": token_digest(token),
        "number": number,
        "vote": rules.validate_vote(vote),
        "important": bool(important),
        "now": now_ms(),
    }


def record_vote(
    engine: sa.Engine, conversation_id: int, token: str, number: int, vote: object, important: bool = False
) -> int:
    """:func:`cast_vote` for the API's hot path: one autocommitted statement; returns the vote id."""
    params = vote_params(conversation_id, token, number, vote, important)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        vote_id = conn.execute(VOTE_INSERT, params).scalar()
        if vote_id is None:
            explain_vote(conn, conversation_id, token, number)
    return vote_id


def explain_vote(conn: sa.Connection, conversation_id: int, token: str, number: int) -> None:
    """Raise the error that made :data:`VOTE_INSERT` insert nothing."""
    row = conn.execute(
        sa.select(
            Conversation.is_open,
            Conversation.strict_moderation,
            Participant.id,
            Participant.eligible,
            Statement.id,
            Statement.moderation,
        )
        .select_from(Conversation)
        .outerjoin(
            Participant,
            sa.and_(
                Participant.conversation_id == Conversation.id, Participant.token_hash == token_digest(token)
            ),
        )
        .outerjoin(
            Statement, sa.and_(Statement.conversation_id == Conversation.id, Statement.number == number)
        )
        .where(Conversation.id == conversation_id)
    ).first()
    if row is None:
        raise NotFound("no_conversation", f"No conversation with id {conversation_id}.")
    is_open, strict, participant_id, is_eligible, statement_id, moderation = row
    if participant_id is None:
        raise Forbidden("unknown_participant", "Unknown participant token for this conversation; join first.")
    rules.check_open(is_open)
    if is_eligible is not True:
        raise Forbidden("not_eligible", "This participant has not passed the screening questions.")
    if statement_id is None or not rules.visible(moderation, strict):
        raise NotFound(
            "no_statement", f"No statement {number} open for voting in conversation {conversation_id}."
        )
    raise Conflict("busy", "The vote was not stored; try again.")  # a concurrent change between the two


def available_count(db: Session, conversation: Conversation) -> int:
    """How many statements a participant can vote on at all (visible, not marked duplicates)."""
    visible = Statement.moderation == int(Moderation.ACCEPTED)
    if not conversation.strict_moderation:
        visible = Statement.moderation != int(Moderation.REJECTED)
    query = sa.select(sa.func.count()).where(
        Statement.conversation_id == conversation.id, Statement.duplicate_of.is_(None), visible
    )
    return int(db.scalar(query) or 0)


def existing_keys(db: Session, conversation_id: int) -> set[str]:
    return set(db.scalars(sa.select(Statement.text_key).where(Statement.conversation_id == conversation_id)))


def touch(db: Session, conversation_id: int) -> None:
    """Note that a statement was added or changed (routing caches reload the statement list)."""
    db.execute(
        sa.update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(statements_version=Conversation.statements_version + 1)
    )


def _add_statement(
    db: Session,
    conversation: Conversation,
    text: str,
    author: Participant | None,
    is_seed: bool,
    is_meta: bool = False,
) -> Statement:
    touch(db, conversation.id)
    return _insert_numbered(
        db,
        Statement,
        conversation.id,
        lambda: Statement(
            conversation_id=conversation.id,
            text=text,
            original_text=text,
            text_key=rules.text_key(text),
            author_id=author.id if author else None,
            moderation=int(rules.initial_state(is_seed)),
            mod_reason="",
            extra="",
            is_seed=is_seed,
            is_meta=is_meta,
            created_ms=now_ms(),
        ),
    )


def submit_statement(
    db: Session, conversation: Conversation, participant: Participant, text: str, cap: int = 0
) -> Statement:
    """A participant's statement: gated by the rules; it counts as the author's agree vote.

    ``cap``: the most statements one participant may add to the conversation (0: no cap)."""
    require_eligible(participant)
    if cap:
        written = db.scalar(
            sa.select(sa.func.count()).where(
                Statement.conversation_id == conversation.id, Statement.author_id == participant.id
            )
        )
        if written >= cap:
            raise TooMany(
                "statement_cap", f"You have written {written} statements here, the most allowed.", n=cap
            )
    gate = rules.effective_threshold(conversation.unlock_threshold, available_count(db, conversation))
    policy = rules.SubmissionPolicy(conversation.is_open, gate, conversation.max_length)
    cleaned = rules.check_submission(
        policy, len(seen_ids(db, participant.id)), text, existing_keys(db, conversation.id)
    )
    statement = _add_statement(db, conversation, cleaned, participant, is_seed=False)
    db.add(
        Vote(
            conversation_id=conversation.id,
            participant_id=participant.id,
            statement_id=statement.id,
            vote=rules.AGREE,
            important=False,
            created_ms=now_ms(),
        )
    )
    return statement


def add_seed(db: Session, conversation: Conversation, text: str, is_meta: bool = False) -> Statement:
    """A moderator's seed statement (accepted at once)."""
    cleaned = rules.check_statement_text(conversation.max_length, text, existing_keys(db, conversation.id))
    return _add_statement(db, conversation, cleaned, None, is_seed=True, is_meta=is_meta)


@dataclass
class SeedReport:
    accepted: list[tuple[int, int]] = field(default_factory=list)  # (CSV line, statement number)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (CSV line, why)


def seed_from_csv(db: Session, conversation: Conversation, data: bytes) -> SeedReport:
    """Bulk seeds from a CSV with a ``comment_text`` column (Polis's format); each row accepted or refused."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RuleError(
            "invalid_csv", f"the CSV is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "comment_text" not in reader.fieldnames:
        raise RuleError(
            "invalid_csv", f"the CSV needs a 'comment_text' header column; found {reader.fieldnames}"
        )
    rows = []
    for row in reader:  # DictReader skips blank lines: its line_num, not a row counter, names the line
        rows.append((reader.line_num, row))
        if len(rows) > MAX_SEED_ROWS:  # refused before anything is stored
            raise RuleError(
                "too_many_rows",
                f"at most {MAX_SEED_ROWS} rows per upload (line {reader.line_num}); nothing was stored",
                n=MAX_SEED_ROWS,
                line=reader.line_num,
            )
    report = SeedReport()
    for line, row in rows:
        try:
            statement = add_seed(db, conversation, row.get("comment_text") or "")
        except RuleError as exc:
            report.refused.append((line, exc.message))
        else:
            report.accepted.append((line, statement.number))
    return report


def statement_vectors(db: Session, finder, items: list) -> np.ndarray:
    """Unit vectors of ``items`` (rows in order): read from ``statement_vectors``; only statements without
    one (or reworded since) go through the model, and their vectors are added to the session (the caller
    commits), so after a restart no worker embeds a conversation again."""
    if not items:
        return np.zeros((0, 384), np.float32)
    model = getattr(finder, "model_name", "minilm")
    stored: dict[int, tuple[str, bytes]] = {}
    ids = [s.id for s in items]
    for start in range(0, len(ids), 5000):
        rows = db.execute(
            sa.select(StatementVector.statement_id, StatementVector.text_key, StatementVector.vector).where(
                StatementVector.statement_id.in_(ids[start : start + 5000]), StatementVector.model == model
            )
        )
        stored.update({sid: (key, vector) for sid, key, vector in rows})
    missing = [s for s in items if stored.get(s.id, ("",))[0] != s.text_key]
    if missing:
        fresh = finder.embed([s.text for s in missing])
        for s, vector in zip(missing, fresh, strict=True):
            blob = np.asarray(vector, np.float32).tobytes()
            db.merge(StatementVector(statement_id=s.id, text_key=s.text_key, model=model, vector=blob))
            stored[s.id] = (s.text_key, blob)
    return np.stack([np.frombuffer(stored[s.id][1], np.float32) for s in items])


def _similar_pool(db: Session, conversation: Conversation, public: bool) -> list:
    """The statements hints may name, as light rows (id, number, text, text_key): no ORM objects for 5,000
    statements per page."""
    strict = conversation.strict_moderation and public  # participants never see unreviewed ones
    visible = Statement.moderation == int(Moderation.ACCEPTED)
    if not strict:
        visible = Statement.moderation != int(Moderation.REJECTED)
    query = (
        sa.select(Statement.id, Statement.number, Statement.text, Statement.text_key, Statement.is_meta)
        .where(Statement.conversation_id == conversation.id, Statement.duplicate_of.is_(None), visible)
        .order_by(Statement.number)
    )
    return list(db.execute(query).all())


def similar_texts(
    db: Session,
    conversation: Conversation,
    text: str,
    finder,
    exclude: int | None = None,
    public: bool = True,
):
    """Statements close in meaning to ``text`` as (statement, cosine); empty without a finder.

    ``public``: only those a participant may see (strict moderation: accepted ones); moderators
    (``public=False``) also see pending ones."""
    if finder is None or not text.strip():
        return []
    pool = [s for s in _similar_pool(db, conversation, public) if s.id != exclude]
    if not pool:
        return []
    scores = statement_vectors(db, finder, pool) @ finder.embed([text])[0]
    order = np.argsort(-scores)[:3]
    return [(pool[i], float(scores[i])) for i in order if scores[i] >= finder.threshold]


def similar_hints(
    db: Session, conversation: Conversation, items: list[Statement], finder, limit: int = 1
) -> dict[int, list[tuple[Statement, float]]]:
    """For a page of the moderation queue: each item's closest other statements (pending ones included),
    from one load of the statements and one matrix product, not one full pass per card."""
    if finder is None or not items:
        return {}
    pool = _similar_pool(db, conversation, public=False)
    if not pool:
        return {}
    others = statement_vectors(db, finder, pool)
    mine = statement_vectors(db, finder, items)
    scores = mine @ others.T
    pool_ids = np.array([s.id for s in pool])
    hints = {}
    for row, item in enumerate(items):
        line = np.where(pool_ids == item.id, -np.inf, scores[row])
        order = np.argsort(-line)[:limit]
        hints[item.id] = [(pool[i], float(line[i])) for i in order if line[i] >= finder.threshold]
    return hints


# ---------------------------------------------------------------- the organiser's dashboard


@dataclass
class Dashboard:
    participants: int  # joined
    voters: int
    votes: int  # rows in the vote log (re-votes included)
    votes_by_day: list[tuple[str, int]]  # the last 14 days with votes, oldest first (UTC)
    by_answer: list[tuple[str, str, int, int]]  # (question, answer, participants, of whom voted)


def dashboard(db: Session, conversation: Conversation) -> Dashboard:
    """Counts for the owner's page: who joined and voted, votes per day, participation by demographic
    answer (so an organiser sees which groups are missing while there is time to reach them)."""
    cid = conversation.id
    participants = db.scalar(sa.select(sa.func.count()).where(Participant.conversation_id == cid)) or 0
    voters = db.scalar(
        sa.select(sa.func.count(sa.distinct(Vote.participant_id))).where(Vote.conversation_id == cid)
    )
    votes = db.scalar(sa.select(sa.func.count()).where(Vote.conversation_id == cid)) or 0
    day = (Vote.created_ms / 86_400_000).cast(sa.Integer)
    days = db.execute(
        sa.select(day, sa.func.count())
        .where(Vote.conversation_id == cid)
        .group_by(day)
        .order_by(day.desc())
        .limit(14)
    ).all()
    import datetime as dt

    by_day = [
        (dt.datetime.fromtimestamp(int(d) * 86_400, dt.UTC).strftime("%Y-%m-%d"), int(n))
        for d, n in reversed(days)
    ]
    voted = sa.select(Vote.participant_id).where(Vote.conversation_id == cid).distinct().subquery()
    rows = db.execute(
        sa.select(
            Question.text,
            Answer.answer,
            sa.func.count(),
            sa.func.count(voted.c.participant_id),
        )
        .join(Answer, Answer.question_id == Question.id)
        .outerjoin(voted, voted.c.participant_id == Answer.participant_id)
        .where(Question.conversation_id == cid, Question.kind == "demographic")
        .group_by(Question.position, Question.id, Question.text, Answer.answer)
        .order_by(Question.position, Question.id, Answer.answer)
    ).all()
    return Dashboard(int(participants), int(voters or 0), int(votes), by_day, [tuple(r) for r in rows])


# ---------------------------------------------------------------- moderation


def moderate(db: Session, user: User, statement: Statement, action: str, reason: str = "") -> Statement:
    statement.moderation = int(rules.moderate(statement.moderation, action, reason))
    statement.mod_reason = reason.strip()[:1000]
    statement.moderated_by, statement.moderated_ms = user.id, now_ms()
    touch(db, statement.conversation_id)
    return statement


def rewrite(db: Session, user: User, statement: Statement, text: str, max_length: int) -> Statement:
    """Change a statement's wording; the first wording stays in ``original_text`` with who changed it."""
    others = existing_keys(db, statement.conversation_id) - {statement.text_key}
    cleaned = rules.check_statement_text(max_length, text, others)
    statement.text, statement.text_key = cleaned, rules.text_key(cleaned)
    statement.rewritten_by, statement.rewritten_ms = user.id, now_ms()
    touch(db, statement.conversation_id)
    return statement


def toggle_meta(db: Session, statement: Statement) -> Statement:
    statement.is_meta = not statement.is_meta
    touch(db, statement.conversation_id)
    return statement


def mark_duplicate(db: Session, statement: Statement, of_number: int | None) -> Statement:
    touch(db, statement.conversation_id)
    if of_number is None:
        statement.duplicate_of = None
        return statement
    original = statement_by_number(db, statement.conversation_id, of_number)
    if original.id == statement.id or original.duplicate_of == statement.id:
        raise RuleError("invalid_duplicate", "a statement cannot be a duplicate of itself")
    statement.duplicate_of = original.id
    return statement


def queue(
    db: Session, conversation_id: int, state: Moderation, page: int = 0, size: int = 50
) -> tuple[list[Statement], int]:
    """One page of the moderation queue for ``state`` (oldest first) and the queue's total length."""
    where = (Statement.conversation_id == conversation_id, Statement.moderation == int(state))
    total = db.scalar(sa.select(sa.func.count()).select_from(Statement).where(*where))
    items = db.scalars(
        sa.select(Statement).where(*where).order_by(Statement.number).offset(page * size).limit(size)
    )
    return list(items), int(total or 0)
