"""Next-statement routing without recounting every vote: tallies kept per worker and brought up to date
from the votes added since the last request.

``service.tallies`` counts the latest vote of every (participant, statement) pair, a GROUP BY over the
whole vote log: ~125 ms per request at CCAI size (38k votes), worse at 1M. Here each worker keeps, per
conversation, agree/disagree/seen counters and the statement list as numpy arrays; a request reads only
the ids of the last ``MARGIN`` votes (an index range on ``(conversation_id, id)``), and for each vote not
yet counted, its value and the value it replaced (the previous vote of that pair, an index lookup), and
moves the counters by the difference. The statement list is reloaded only when the conversation's
``statements_version`` changed (every service function that adds or changes a statement bumps it).

Why a margin: PostgreSQL hands out vote ids before commit, so id 100 may become visible after id 101.
Votes are re-checked within the last ``MARGIN`` ids (every ``RESCAN_S``; in between only ids above the
highest counted one are read) and counted once each (a set of counted ids in that window), so a vote
committed late is still counted, once (at most ``RESCAN_S`` late). A vote committed more than ``MARGIN``
ids late would be missed until the next full recount (``FULL_RECOUNT_S``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from ccai.consultation import rules
from ccai.consultation.store import Conversation, Statement, Vote

MARGIN = 1000
RESCAN_S = 1.0  # how often the margin is re-read for late commits (in between, only ids above the highest)
FULL_RECOUNT_S = 300.0


@dataclass
class Routing:
    """One conversation's routing state (numpy arrays aligned with ``ids``, in statement-number order)."""

    version: int = -1
    born: int | None = None  # the conversation's created_ms: an id SQLite reuses after a delete is not it
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    visible_strict: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    visible_open: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    is_seed: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    is_meta: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    agree: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    disagree: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    seen: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    position: dict[int, int] = field(default_factory=dict)
    counts: dict[int, list[int]] = field(default_factory=dict)  # statement id -> [agree, disagree, seen]
    counted: set[int] = field(default_factory=set)  # vote ids counted within the margin
    high: int = 0  # the largest vote id counted
    recounted_at: float = -1e18
    rescanned_at: float = -1e18
    lock: threading.Lock = field(default_factory=threading.Lock)

    def visible(self, strict: bool) -> np.ndarray:
        return self.visible_strict if strict else self.visible_open

    def tallies(self) -> dict[int, tuple[int, int, int]]:
        return {sid: (a, d, s) for sid, (a, d, s) in self.counts.items() if s}


class RoutingCache:
    """Per-worker routing states by conversation id (thread-safe: the sync handlers share it)."""

    def __init__(self, clock=time.monotonic):
        self.states: dict[int, Routing] = {}
        self.clock = clock
        self.lock = threading.Lock()

    def get(self, db: Session, conversation: Conversation) -> Routing:
        with self.lock:
            state = self.states.setdefault(conversation.id, Routing(born=conversation.created_ms))
            if state.born != conversation.created_ms:  # deleted, and its id given to a new conversation
                state = self.states[conversation.id] = Routing(born=conversation.created_ms)
        with state.lock:
            now = self.clock()
            if now - state.recounted_at > FULL_RECOUNT_S:
                _recount(db, conversation.id, state)
                state.recounted_at = now
                state.version = -1
            elif now - state.rescanned_at > RESCAN_S:
                _catch_up(db, conversation.id, state)
                state.rescanned_at = now
            else:
                _catch_up(db, conversation.id, state, floor=state.high)
            if state.version != conversation.statements_version:
                _load_statements(db, conversation, state)
            return state


def _recount(db: Session, conversation_id: int, state: Routing) -> None:
    """All counters afresh: the latest vote per pair up to ``high - MARGIN``, then the rest one by one."""
    high = db.scalar(sa.select(sa.func.max(Vote.id)).where(Vote.conversation_id == conversation_id)) or 0
    cut = max(0, high - MARGIN)
    latest = (
        sa.select(sa.func.max(Vote.id).label("id"))
        .where(Vote.conversation_id == conversation_id, Vote.id <= cut)
        .group_by(Vote.participant_id, Vote.statement_id)
        .subquery()
    )
    rows = db.execute(
        sa.select(Vote.statement_id, Vote.vote, sa.func.count())
        .join(latest, latest.c.id == Vote.id)
        .group_by(Vote.statement_id, Vote.vote)
    )
    state.counts, state.counted, state.high = {}, set(), cut
    for sid, vote, n in rows:
        entry = state.counts.setdefault(sid, [0, 0, 0])
        entry[2] += n
        entry[0] += n if vote == rules.AGREE else 0
        entry[1] += n if vote == rules.DISAGREE else 0
    _catch_up(db, conversation_id, state, floor=cut)


def _catch_up(db: Session, conversation_id: int, state: Routing, floor: int | None = None) -> None:
    """Count the votes added since the last call (and any committed late within the margin)."""
    low = max(state.high - MARGIN, 0) if floor is None else floor
    ids = db.scalars(sa.select(Vote.id).where(Vote.conversation_id == conversation_id, Vote.id > low)).all()
    new = sorted(set(ids) - state.counted)
    if not new:
        return
    previous = aliased(Vote)
    replaced = (
        sa.select(previous.vote)
        .where(
            previous.participant_id == Vote.participant_id,
            previous.statement_id == Vote.statement_id,
            previous.id < Vote.id,
        )
        .order_by(previous.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    for start in range(0, len(new), 5000):
        chunk = new[start : start + 5000]
        rows = db.execute(
            sa.select(Vote.id, Vote.statement_id, Vote.vote, replaced)
            .where(Vote.id.in_(chunk))
            .order_by(Vote.id)
        ).all()
        for vote_id, sid, vote, before in rows:
            _apply(state, sid, vote, before)
            state.counted.add(vote_id)
    state.high = max(state.high, new[-1])
    floor_id = state.high - MARGIN
    state.counted = {i for i in state.counted if i > floor_id}


def _apply(state: Routing, sid: int, vote: int, before: int | None) -> None:
    entry = state.counts.setdefault(sid, [0, 0, 0])
    delta = [0, 0, 0]
    if before is None:
        delta[2] = 1
    else:
        delta[0] -= before == rules.AGREE
        delta[1] -= before == rules.DISAGREE
    delta[0] += vote == rules.AGREE
    delta[1] += vote == rules.DISAGREE
    for k in range(3):
        entry[k] += delta[k]
    pos = state.position.get(sid)
    if pos is not None:
        state.agree[pos] += delta[0]
        state.disagree[pos] += delta[1]
        state.seen[pos] += delta[2]


def _load_statements(db: Session, conversation: Conversation, state: Routing) -> None:
    """The routing columns of every statement (not the texts), and counters aligned with them."""
    rows = db.execute(
        sa.select(
            Statement.id, Statement.moderation, Statement.is_seed, Statement.is_meta, Statement.duplicate_of
        )
        .where(Statement.conversation_id == conversation.id)
        .order_by(Statement.number)
    ).all()
    ids = np.array([r[0] for r in rows], np.int64)
    moderation = np.array([r[1] for r in rows], np.int64)
    original = np.array([r[4] is None for r in rows], bool)
    state.ids = ids
    state.visible_strict = (moderation == rules.Moderation.ACCEPTED) & original
    state.visible_open = (moderation != rules.Moderation.REJECTED) & original
    state.is_seed = np.array([bool(r[2]) for r in rows], bool)
    state.is_meta = np.array([bool(r[3]) for r in rows], bool)
    state.position = {int(sid): k for k, sid in enumerate(ids)}
    counts = [state.counts.get(int(sid), (0, 0, 0)) for sid in ids]
    table = np.array(counts, np.int64).reshape(-1, 3)
    state.agree, state.disagree, state.seen = table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy()
    state.version = conversation.statements_version
