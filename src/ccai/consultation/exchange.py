"""Polis exports in and out of the database, and the vote/statement tables the analysis stage reads.

Reading and writing the CSV files is ``ccai.formats.polis``'s job; this module only maps a
:class:`~ccai.formats.polis.PolisExport` onto the tables and back. Statement and participant ids are kept
(they are the per-conversation ``number`` columns), the full vote log is kept when the export has one, and
``summary.csv`` rows we do not compute (views, groups ...) are stored so an export gives them back.
"""

from __future__ import annotations

import json
import math
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ccai.consultation import rules
from ccai.consultation.store import (
    CONVERSATION_DEFAULTS,
    Answer,
    Conversation,
    ImportedSummary,
    Participant,
    Question,
    Statement,
    Vote,
)

BATCH = 5_000
CORE = {"text", "author", "moderated", "is_meta", "is_seed", "timestamp"}
RECOUNTED = ["agrees", "disagrees", "passes"]  # kept while the import is untouched, recounted after


# OWASP "CSV injection": a cell starting with one of these is run as a formula by spreadsheet programs
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading apostrophe when a spreadsheet would read it as a formula (OWASP advice)."""
    return "'" + text if isinstance(text, str) and text.startswith(FORMULA_START) else text


def unescape_cell(text: str) -> str:
    """Undo :func:`spreadsheet_safe` on import (an original text of ``'=...`` loses its apostrophe)."""
    if isinstance(text, str) and text.startswith("'") and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


def _extras(row: pd.Series) -> str:
    """The comment columns ccai does not model (datetime, Polis's own GAC ...), kept verbatim as JSON."""
    extra = {
        k: (v.item() if hasattr(v, "item") else v)
        for k, v in row.items()
        if k not in CORE and _na(v) is not None
    }
    return json.dumps(extra) if extra else ""


def _ms(value) -> int | None:
    return (
        None
        if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)
        else int(round(float(value)))
    )


def _na(value):
    return None if value is None or pd.isna(value) else value


def import_export(
    db: Session,
    export,
    owner_id: int | None = None,
    topic: str | None = None,
    private: bool = True,
) -> Conversation:
    """A new conversation holding everything in ``export`` (a ``PolisExport``); returns it (not committed).

    It is closed, and private unless asked otherwise: a research export is something to browse and
    analyse, not a consultation the public list should offer (it used to be listed on ``/``).
    """
    log = export.vote_log if export.vote_log is not None else export.votes
    conversation = _import_conversation(db, export, len(log), owner_id, topic)
    conversation.is_private = private
    cid = conversation.id
    _insert(db, Participant, _participant_rows(cid, export, log))
    pid = _id_map(db, Participant, cid)
    _insert(db, Statement, _statement_rows(cid, export.statements, pid))
    sid = _id_map(db, Statement, cid)
    # the log goes in in file order, so an export writes votes.csv back row for row
    vote_rows = (
        {
            "conversation_id": cid,
            "participant_id": pid[int(p)],
            "statement_id": sid[int(s)],
            "vote": int(v),
            "important": False,
            "created_ms": _ms(t),
        }
        for p, s, v, t in zip(
            log["participant"], log["statement"], log["vote"], log["timestamp"], strict=True
        )
    )
    _insert(db, Vote, vote_rows)
    return conversation


def import_title(export, folder: Path) -> str:
    """A title for an imported export: summary.csv's topic, else the folder README's first heading (the
    CCAI export has no summary.csv but a README titled "CCAI public input — ..."), else a plain
    "Imported Polis export" with its statement count; never the bare folder name."""
    topic = str((export.summary or {}).get("topic") or "").strip()
    if topic:
        return topic[:300]
    for name in ("README.md", "readme.md", "README.txt", "README"):
        readme = folder / name
        if readme.is_file():
            for line in readme.read_text(encoding="utf-8", errors="replace").splitlines():
                heading = line.strip().lstrip("#").strip()
                if line.lstrip().startswith("#") and heading:
                    return heading[:300]
    return f"Imported Polis export ({len(export.statements)} statements)"


def _import_conversation(db: Session, export, n_votes: int, owner_id: int | None, topic: str | None):
    """The closed conversation row (with the summary's key/value rows kept for the re-export)."""
    summary = dict(export.summary or {})
    meta = {"generation": export.generation, "layout": getattr(export, "layout", {}), "votes": int(n_votes)}
    settings = {
        "topic": (topic or summary.get("topic") or "Imported conversation")[:300],
        "description": summary.get("conversation-description", "") or "",
        "is_open": False,
        "max_length": 1000,
        "url": (summary.get("url") or "")[:500],
        "import_meta": json.dumps(meta),
    }
    conversation = Conversation(owner_id=owner_id, **CONVERSATION_DEFAULTS | settings)
    db.add(conversation)
    db.flush()
    db.add_all(
        ImportedSummary(conversation_id=conversation.id, key=str(k)[:100], value=str(v))
        for k, v in summary.items()
    )
    return conversation


def _participant_rows(cid: int, export, log: pd.DataFrame) -> list[dict]:
    """Everyone who voted, is listed, or wrote a statement, under their Polis number."""
    people = export.participants
    numbers = set(int(p) for p in people.index) | set(int(p) for p in log["participant"].unique())
    numbers |= (
        {int(a) for a in export.statements["author"].dropna()} if "author" in export.statements else set()
    )
    first_seen = log.groupby("participant")["timestamp"].min() if len(log) else pd.Series(dtype=float)
    rows = []
    for number in sorted(numbers):
        info = people.loc[number] if number in people.index else None
        xid = None if info is None or "xid" not in people else _na(info["xid"])
        group = None if info is None or "group_id" not in people else _na(info["group_id"])
        rows.append(
            {
                "conversation_id": cid,
                "number": number,
                "token_hash": None,
                "xid": None if xid is None else str(xid),
                "group_id": None if group is None else int(group),
                "eligible": True,
                "created_ms": _ms(first_seen.get(number)) or 0,
            }
        )
    return rows


def _statement_rows(cid: int, statements: pd.DataFrame, pid: dict[int, int]) -> list[dict]:
    rows = []
    for number, s in statements.iterrows():
        text = unescape_cell(str(s["text"])) if _na(s["text"]) is not None else ""
        author = _na(s.get("author"))
        rows.append(
            {
                "conversation_id": cid,
                "number": int(number),
                "text": text,
                "original_text": text,
                "text_key": rules.text_key(text),
                "author_id": None if author is None else pid[int(author)],
                "moderation": int(_na(s.get("moderated")) or 0),
                "mod_reason": "",
                "is_meta": bool(_na(s.get("is_meta")) or False),
                "is_seed": bool(_na(s.get("is_seed")) or False),
                "created_ms": _ms(s.get("timestamp")),
                "extra": _extras(s),
            }
        )
    return rows


def _id_map(db: Session, model, conversation_id: int) -> dict[int, int]:
    """number -> database id for one conversation's participants or statements."""
    query = sa.select(model.number, model.id).where(model.conversation_id == conversation_id)
    return {number: row_id for number, row_id in db.execute(query)}


def _insert(db: Session, model, rows) -> None:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            db.execute(model.__table__.insert(), batch)
            batch = []
    if batch:
        db.execute(model.__table__.insert(), batch)


def votes_frame(db: Session, conversation_id: int, log: bool = False) -> pd.DataFrame:
    """Votes as the long table of docs/architecture.md (latest per pair, or the whole log)."""
    query = (
        sa.select(
            Participant.number.label("participant"),
            Statement.number.label("statement"),
            Vote.vote,
            Vote.created_ms.label("timestamp"),
            Vote.id,
        )
        .join(Participant, Participant.id == Vote.participant_id)
        .join(Statement, Statement.id == Vote.statement_id)
        .where(Vote.conversation_id == conversation_id)
        .order_by(Vote.id)
    )
    frame = pd.DataFrame(
        db.execute(query).all(), columns=["participant", "statement", "vote", "timestamp", "id"]
    )
    if not log:
        frame = frame.drop_duplicates(["participant", "statement"], keep="last")
    frame = frame.drop(columns="id").reset_index(drop=True)
    return frame.astype(
        {"participant": "int64", "statement": "int64", "vote": "int8", "timestamp": "float64"}
    )


def statements_frame(db: Session, conversation_id: int, extras: bool = False) -> pd.DataFrame:
    """Statements by number: text, author, moderated, is_meta, is_seed, timestamp (+ import extras)."""
    author = sa.orm.aliased(Participant)
    query = (
        sa.select(
            Statement.number,
            Statement.text,
            author.number,
            Statement.moderation,
            Statement.is_meta,
            Statement.is_seed,
            Statement.created_ms,
            Statement.extra,
        )
        .outerjoin(author, author.id == Statement.author_id)
        .where(Statement.conversation_id == conversation_id)
        .order_by(Statement.number)
    )
    columns = ["statement", "text", "author", "moderated", "is_meta", "is_seed", "timestamp", "extra"]
    frame = pd.DataFrame(db.execute(query).all(), columns=columns).set_index("statement")
    frame = frame.astype(
        {"author": "Int64", "moderated": "int64", "is_meta": bool, "is_seed": bool, "timestamp": "float64"}
    )
    extra = frame.pop("extra")
    if extras and extra.astype(bool).any():
        table = pd.DataFrame([json.loads(e) if e else {} for e in extra], index=frame.index)
        frame = frame.join(table)
    return frame


def participants_frame(db: Session, conversation_id: int) -> pd.DataFrame:
    """Participants who voted, indexed by number, with xid and (imported) group id."""
    voted = sa.select(Vote.participant_id).where(Vote.conversation_id == conversation_id).distinct()
    query = (
        sa.select(Participant.number, Participant.xid, Participant.group_id)
        .where(Participant.conversation_id == conversation_id, Participant.id.in_(voted))
        .order_by(Participant.number)
    )
    frame = pd.DataFrame(db.execute(query).all(), columns=["participant", "xid", "group_id"])
    return frame.set_index("participant").astype({"group_id": "Int64"})


def to_export(db: Session, conversation: Conversation):
    """The conversation as a ``PolisExport`` (agree = +1; an import keeps its generation and columns)."""
    from ccai.formats.polis import PolisExport, latest_votes

    log = votes_frame(db, conversation.id, log=True)
    votes = latest_votes(log)
    statements = statements_frame(db, conversation.id, extras=True)
    imported = db.execute(
        sa.select(ImportedSummary.key, ImportedSummary.value)
        .where(ImportedSummary.conversation_id == conversation.id)
        .order_by(ImportedSummary.id)
    )
    summary = dict(imported.all()) | {
        "topic": conversation.topic,
        "url": conversation.url,
        "conversation-description": conversation.description,
    }
    computed = {
        "voters": str(votes["participant"].nunique()),
        "comments": str(len(statements)),
        "commenters": str(statements["author"].dropna().nunique()),
    }
    summary |= {k: v for k, v in computed.items() if k not in summary}  # an import's own figures win
    meta = json.loads(conversation.import_meta or "{}")
    if meta.get("votes") != len(log):  # votes came in after the import: its per-statement counts are stale
        statements = statements.drop(columns=[c for c in RECOUNTED if c in statements.columns])
    return PolisExport(
        statements=statements,
        votes=votes,
        vote_log=log,
        participants=participants_frame(db, conversation.id),
        summary=summary,
        comment_groups=None,
        generation=meta.get("generation", "A"),
        source=None,
        layout=meta.get("layout", {}),
    )


def answers_frame(db: Session, conversation_id: int) -> pd.DataFrame:
    """Screening and demographic answers, one row per (participant, question), for the export."""
    query = (
        sa.select(
            Participant.number,
            Participant.xid,
            Participant.eligible,
            Question.id,
            Question.kind,
            Question.text,
            Answer.answer,
            Answer.created_ms,
        )
        .join(Answer, Answer.participant_id == Participant.id)
        .join(Question, Question.id == Answer.question_id)
        .where(Participant.conversation_id == conversation_id)
        .order_by(Participant.number, Question.position, Question.id)
    )
    columns = [
        "participant",
        "xid",
        "eligible",
        "question-id",
        "question-kind",
        "question-text",
        "answer",
        "timestamp",
    ]
    return pd.DataFrame(db.execute(query).all(), columns=columns)


def important_frame(db: Session, conversation_id: int) -> pd.DataFrame:
    """The current votes a participant marked "important" (Polis has the flag but exports it nowhere)."""
    latest = (
        sa.select(sa.func.max(Vote.id))
        .where(Vote.conversation_id == conversation_id)
        .group_by(Vote.participant_id, Vote.statement_id)
    )
    query = (
        sa.select(Vote.created_ms, Participant.number, Statement.number, Vote.vote)
        .join(Participant, Participant.id == Vote.participant_id)
        .join(Statement, Statement.id == Vote.statement_id)
        .where(Vote.id.in_(latest), Vote.important.is_(True))
        .order_by(Vote.id)
    )
    return pd.DataFrame(db.execute(query).all(), columns=["timestamp", "voter-id", "comment-id", "vote"])


EXTRA_FILES = ("participant-answers.csv", "important-votes.csv")


def export_zip(db: Session, conversation: Conversation, path: Path) -> Path:
    """Write the conversation's Polis export files into one zip at ``path``, plus what Polis lacks:
    ``participant-answers.csv`` (screening and demographic answers) and ``important-votes.csv``.
    Text cells that a spreadsheet would run as a formula start with an apostrophe."""
    from ccai.formats.polis import write_polis_export

    export = to_export(db, conversation)
    export.statements["text"] = export.statements["text"].map(spreadsheet_safe)
    answers = answers_frame(db, conversation.id)
    for column in ("xid", "question-text", "answer"):
        answers[column] = answers[column].map(spreadsheet_safe)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_polis_export(export, Path(tmp))
        extra = {
            "participant-answers.csv": answers,
            "important-votes.csv": important_frame(db, conversation.id),
        }
        for name, frame in extra.items():
            target = Path(tmp) / name
            frame.to_csv(target, index=False)
            files.append(target)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for file in files:
                archive.write(file, arcname=Path(file).name)
    return path
