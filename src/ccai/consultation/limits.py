"""Abuse controls: how often one participant or one client address may join, vote and write.

Sliding windows counted in memory per worker (like ``accounts.LoginLimiter``), keyed by salted digests,
so no address is kept in clear and none reaches the database. With N workers a client gets up to N times
a limit; the limits are set far above what a person reading statements does (a vote every half second
for a minute), so only scripts meet them. ``Limits.off()`` turns them off (the throughput benchmark).
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields

from ccai.consultation.rules import TooMany

Rate = tuple[int, float]  # at most N events per window of S seconds; N = 0 means no limit


@dataclass(frozen=True)
class Limits:
    """Per worker. ``CCAI_LIMITS="joins_per_ip=30/60,statement_cap=20"`` or ``off`` overrides them."""

    joins_per_ip: Rate = (60, 60.0)
    votes_per_participant: Rate = (120, 60.0)
    votes_per_ip: Rate = (2400, 60.0)
    statements_per_participant: Rate = (10, 3600.0)
    statements_per_ip: Rate = (60, 3600.0)
    statement_cap: int = 50  # statements one participant may add to one conversation, ever (0: no cap)

    @classmethod
    def off(cls) -> Limits:
        return cls(**{f.name: ((0, 1.0) if f.name != "statement_cap" else 0) for f in fields(cls)})

    @classmethod
    def parse(cls, text: str | None) -> Limits:
        """``off``, or comma-separated ``name=N/seconds`` (rates) and ``statement_cap=N``."""
        text = (text or "").strip()
        if not text:
            return cls()
        if text == "off":
            return cls.off()
        known = {f.name for f in fields(cls)}
        values: dict[str, object] = {}
        for part in text.split(","):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in known:
                raise ValueError(f"CCAI_LIMITS: unknown limit {name!r}; known: {sorted(known)}")
            try:
                if name == "statement_cap":
                    values[name] = int(value)
                else:
                    count, _, seconds = value.partition("/")
                    values[name] = (int(count), float(seconds or 60))
            except ValueError:
                raise ValueError(
                    f"CCAI_LIMITS: {part!r} is not name=N/seconds (e.g. joins_per_ip=30/60)"
                ) from None
        return cls(**values)

    @classmethod
    def from_env(cls) -> Limits:
        return cls.parse(os.environ.get("CCAI_LIMITS"))


class RateLimiter:
    """Counts events per key in sliding windows; :meth:`hit` raises :class:`TooMany` past a limit."""

    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic):
        self.limits = limits or Limits()
        self.clock = clock
        self.salt = secrets.token_bytes(16)
        self.events: dict[bytes, deque[float]] = {}

    def _key(self, kind: str, who: str) -> bytes:
        return hashlib.blake2b(f"{kind}:{who}".encode(), key=self.salt, digest_size=16).digest()

    def hit(self, kind: str, who: str, rate: Rate) -> None:
        """Count one ``kind`` event for ``who``, or refuse it (nothing counted) when over ``rate``."""
        limit, window = rate
        if limit <= 0:
            return
        now = self.clock()
        if len(self.events) > 50_000:  # forget keys whose window has passed
            self.events = {k: t for k, t in self.events.items() if t and t[-1] > now - 3600}
        key = self._key(kind, who)
        times = self.events.setdefault(key, deque())
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= limit:
            wait = max(1, math.ceil(times[0] + window - now))
            raise TooMany(
                "too_many", f"Too many requests ({kind}) from here; try again in {wait} second(s).", wait=wait
            )
        times.append(now)

    def join(self, client: str) -> None:
        self.hit("joins", client, self.limits.joins_per_ip)

    def vote(self, client: str, participant: str) -> None:
        self.hit("votes-ip", client, self.limits.votes_per_ip)
        self.hit("votes", participant, self.limits.votes_per_participant)

    def statement(self, client: str, participant: str) -> None:
        self.hit("statements-ip", client, self.limits.statements_per_ip)
        self.hit("statements", participant, self.limits.statements_per_participant)
