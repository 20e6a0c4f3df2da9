"""The consultation's rules as pure functions: no database, no HTTP, easy to test and to read.

- votes: what a valid vote is (+1 agree, -1 disagree, 0 pass: the Polis *export* sign);
- submission gating: closed conversations, the unlock threshold, the length limit, exact duplicates;
- the moderation state machine (pending / accepted / rejected, a reason for every rejection);
- routing: which statement a participant sees next (unseen only, moderation rules, seed statements
  first when asked, otherwise at random with probability proportional to the Polis priority, polis-math §14).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ccai.analysis.consensus import comment_priority

AGREE, PASS, DISAGREE = 1, 0, -1
VOTE_VALUES = (AGREE, DISAGREE, PASS)


class RuleError(ValueError):
    """A request the rules refuse; ``code`` is stable (for the API), ``message`` is for people.

    ``values`` fill the UI catalogue's ``err_<code>`` text, so pages can say the same in the reader's
    language (the English ``message`` stays what the API answers)."""

    status = 400

    def __init__(self, code: str, message: str, **values: object):
        super().__init__(message)
        self.code = code
        self.message = message
        self.values = values


class Forbidden(RuleError):
    status = 403


class Conflict(RuleError):
    status = 409


class NotFound(RuleError):
    status = 404


class Gone(RuleError):
    """Something that existed and can no longer be used (a spent or expired invite)."""

    status = 410


class TooMany(RuleError):
    status = 429


# ---------------------------------------------------------------- votes


def validate_vote(value: object) -> int:
    """The vote as an int in {+1, -1, 0}; anything else (2, "yes", 1.5, True) is refused."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in VOTE_VALUES:
        raise RuleError("invalid_vote", f"vote must be 1 (agree), -1 (disagree) or 0 (pass), got {value!r}")
    return value


def check_open(is_open: bool) -> None:
    if not is_open:
        raise Forbidden("closed", "This conversation is closed: it no longer accepts votes or statements.")


# ---------------------------------------------------------------- submissions


def normalise(text: str) -> str:
    """NFKC, collapsed whitespace, case-folded, trailing punctuation dropped: what counts as the same."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"\s+", " ", text).strip().casefold()
    return text.rstrip(".!?;: ")


def text_key(text: str) -> str:
    """A fixed-size digest of :func:`normalise`, indexed in the database to refuse exact duplicates."""
    return hashlib.sha256(normalise(text).encode()).hexdigest()


def clean_text(text: str) -> str:
    """Whitespace trimmed and runs collapsed; control characters removed."""
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class SubmissionPolicy:
    is_open: bool
    unlock_threshold: int
    max_length: int


def effective_threshold(threshold: int, available: int) -> int:
    """The unlock gate a participant actually faces: never more votes than there are statements to vote on
    (a gate of 30 with 9 statements would otherwise block all writing for good)."""
    return max(0, min(threshold, available))


def check_submission(policy: SubmissionPolicy, votes_cast: int, text: str, existing_keys: set[str]) -> str:
    """The cleaned text if the participant may submit it; otherwise a :class:`RuleError` that says why."""
    check_open(policy.is_open)
    if votes_cast < policy.unlock_threshold:
        left = policy.unlock_threshold - votes_cast
        raise Forbidden("locked", f"Vote on {left} more statement(s) to unlock writing your own.", n=left)
    return check_statement_text(policy.max_length, text, existing_keys)


def check_statement_text(max_length: int, text: str, existing_keys: set[str]) -> str:
    """Length and exact-duplicate rules shared by participants and seed statements."""
    cleaned = clean_text(text)
    if not cleaned:
        raise RuleError("empty", "The statement is empty.")
    if len(cleaned) > max_length:
        raise RuleError(
            "too_long",
            f"The statement has {len(cleaned)} characters; the limit is {max_length}.",
            n=len(cleaned),
            limit=max_length,
        )
    if text_key(cleaned) in existing_keys:
        raise Conflict("duplicate", "This statement already exists in the conversation.")
    return cleaned


# ---------------------------------------------------------------- moderation


class Moderation(IntEnum):
    """Polis's moderation values, kept so exports need no translation."""

    REJECTED = -1
    PENDING = 0
    ACCEPTED = 1


ACTIONS = {"accept": Moderation.ACCEPTED, "reject": Moderation.REJECTED, "reset": Moderation.PENDING}


def initial_state(is_seed: bool) -> Moderation:
    """Moderator seed statements are accepted at once (as in Polis); everything else waits in the queue."""
    return Moderation.ACCEPTED if is_seed else Moderation.PENDING


def moderate(current: int, action: str, reason: str = "") -> Moderation:
    """The state after ``action``. Every move between states is allowed except a rejection without reason."""
    if action not in ACTIONS:
        raise RuleError("invalid_action", f"action must be one of {sorted(ACTIONS)}, got {action!r}")
    new = ACTIONS[action]
    if new == Moderation.REJECTED and not reason.strip():
        raise RuleError("reason_required", "Give a reason when rejecting a statement.")
    if new == current:
        raise Conflict("unchanged", f"The statement is already {Moderation(current).name.lower()}.")
    return new


def visible(moderation: int, strict: bool) -> bool:
    """Strict conversations show only accepted statements; permissive ones all but rejected (Polis)."""
    return moderation == Moderation.ACCEPTED if strict else moderation != Moderation.REJECTED


# ---------------------------------------------------------------- routing


@dataclass(frozen=True)
class Candidate:
    """What routing needs to know about one statement, with its tallies over current votes."""

    id: int
    moderation: int
    is_seed: bool = False
    is_meta: bool = False
    duplicate_of: int | None = None
    agree: int = 0
    disagree: int = 0
    seen: int = 0
    extremity: float = 0.0


def routable(candidates: Sequence[Candidate], seen: set[int], strict: bool) -> list[Candidate]:
    """Statements this participant may be shown: unseen, visible under the moderation rule, not duplicates."""
    return [
        c for c in candidates if c.id not in seen and c.duplicate_of is None and visible(c.moderation, strict)
    ]


def choose_next(
    candidates: Sequence[Candidate], seen: set[int], strict: bool, seed_first: bool, rng: np.random.Generator
) -> Candidate | None:
    """The next statement, or None when the participant has seen everything they may see.

    With ``seed_first`` unseen seed statements come before the rest. Among the pool, one is drawn with
    probability proportional to its priority (from the *current* tallies, not Polis's lagged ones).
    """
    eligible = np.array(
        [c.id not in seen and c.duplicate_of is None and visible(c.moderation, strict) for c in candidates],
        bool,
    )
    k = choose_index(
        eligible,
        np.array([c.is_seed for c in candidates], bool),
        np.array([c.agree for c in candidates]),
        np.array([c.disagree for c in candidates]),
        np.array([c.seen for c in candidates]),
        np.array([c.is_meta for c in candidates], bool),
        seed_first,
        rng,
        np.array([c.extremity for c in candidates], float),
    )
    return None if k is None else candidates[k]


def routing_weights(
    agree: np.ndarray,
    disagree: np.ndarray,
    seen: np.ndarray,
    is_meta: np.ndarray,
    extremity: np.ndarray | None = None,
) -> np.ndarray:
    """Polis's routing weight of every statement (``comment_priority``, a non-finite or non-positive one
    read as 1). Element by element, so a server may compute it once per change of the counters."""
    weights = np.asarray(
        comment_priority(
            agree, disagree, seen, np.zeros(len(agree)) if extremity is None else extremity, is_meta
        ),
        dtype=float,
    )
    return np.where(np.isfinite(weights) & (weights > 0), weights, 1.0)


def choose_index(
    pool: np.ndarray,
    is_seed: np.ndarray,
    agree: np.ndarray,
    disagree: np.ndarray,
    seen: np.ndarray,
    is_meta: np.ndarray,
    seed_first: bool,
    rng: np.random.Generator,
    extremity: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> int | None:
    """:func:`choose_next` over arrays (one entry per statement, ``pool`` marking the routable ones):
    the index of the statement drawn, or None. Arrays let the server route among 10k statements without
    building 10k objects per request; ``weights`` (:func:`routing_weights` of the same counters) saves
    computing them per request."""
    if seed_first and (pool & is_seed).any():
        pool = pool & is_seed
    where = np.flatnonzero(pool)
    if not len(where):
        return None
    if weights is None:
        chosen = routing_weights(
            agree[where],
            disagree[where],
            seen[where],
            is_meta[where],
            None if extremity is None else extremity[where],
        )
    else:
        chosen = weights[where]
    return int(where[rng.choice(len(where), p=chosen / chosen.sum())])


def routing_rng(conversation_id: int, participant_id: int, n_seen: int, seed: int = 0) -> np.random.Generator:
    """A generator fixed by who asks and how far they are, so the same state always routes the same way."""
    return np.random.default_rng([seed, conversation_id, participant_id, n_seen])


# ---------------------------------------------------------------- screening


def parse_choices(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def eligible(answers: dict[int, str], screening: dict[int, set[str]]) -> bool:
    """Eligible when every screening question got one of its admitting answers (CCAI: AI-aware adults)."""
    return all(answers.get(qid) in admitted for qid, admitted in screening.items())


def check_xid(xid: str | None, required: bool, allowlist: set[str] | None) -> str | None:
    """The external id if acceptable: present when required, on the allow-list when there is one."""
    xid = (xid or "").strip() or None
    if xid is not None and len(xid) > 200:
        raise RuleError("invalid_xid", "xid is longer than 200 characters.")
    if required and xid is None:
        raise Forbidden(
            "xid_required", "This conversation needs an external id (xid) from the site that embeds it."
        )
    if allowlist is not None and xid not in allowlist:
        raise Forbidden("xid_not_allowed", "This external id is not on the conversation's allow-list.")
    return xid
