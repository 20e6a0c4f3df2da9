"""Abuse controls: how often one participant or one client address may join, vote and write.

Sliding windows keyed by salted digests, so no address is kept in clear and none reaches the database,
counted in this process's memory or, with ``CCAI_REDIS_URL``, in Redis shared by every server process
(``counters.py``): several workers or machines then enforce one limit, not one each. The limits are set
far above what a person reading statements does (a vote every half second for a minute), so only scripts
meet them. ``Limits.off()`` turns them off (the throughput benchmark).
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from ccai.consultation.counters import MemoryLog, RedisLog
from ccai.consultation.rules import TooMany

Rate = tuple[int, float]  # at most N events per window of S seconds; N = 0 means no limit


@dataclass(frozen=True)
class Limits:
    """``CCAI_LIMITS="joins_per_ip=30/60,statement_cap=20"`` or ``off`` overrides them."""

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
    """Counts events per key in sliding windows; :meth:`hit` raises :class:`TooMany` past a limit.

    ``log`` keeps the windows (``counters.py``): this process's memory by default, Redis when several
    processes must count together. ``salt`` makes the keys; processes that share a log share a salt
    (derived from the app's secret key), or they would not recognise each other's keys.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        log: MemoryLog | RedisLog | None = None,
        salt: bytes | None = None,
    ):
        self.limits = limits or Limits()
        self.clock = clock
        self.salt = salt or secrets.token_bytes(16)
        self.log = log if log is not None else MemoryLog()

    def _key(self, kind: str, who: str) -> str:
        return hashlib.blake2b(f"{kind}:{who}".encode(), key=self.salt[:64], digest_size=16).hexdigest()

    def hit(self, kind: str, who: str, rate: Rate) -> None:
        """Count one ``kind`` event for ``who``, or refuse it (nothing counted) when over ``rate``."""
        limit, window = rate
        if limit <= 0:
            return
        self._refuse(kind, self.log.hit("r" + self._key(kind, who), limit, window, self.clock()))

    def reset(self) -> None:
        """Forget every count (tests)."""
        self.log.reset()

    def join(self, client: str) -> None:
        self.hit("joins", client, self.limits.joins_per_ip)

    def _vote_windows(self, client: str, participant: str) -> list[tuple[str, int, float]]:
        rates = (
            ("votes-ip", client, self.limits.votes_per_ip),
            ("votes", participant, self.limits.votes_per_participant),
        )
        return [
            ("r" + self._key(kind, who), limit, window) for kind, who, (limit, window) in rates if limit > 0
        ]

    def _refuse(self, kind: str, wait: float) -> None:
        if wait > 0:
            wait = max(1, math.ceil(wait))
            raise TooMany(
                "too_many", f"Too many requests ({kind}) from here; try again in {wait} second(s).", wait=wait
            )

    def vote(self, client: str, participant: str) -> None:
        """Both vote limits in one check (one Redis round trip), counted only when both have room."""
        windows = self._vote_windows(client, participant)
        if windows:
            self._refuse("votes", self.log.hit_many(windows, self.clock()))

    async def avote(self, client: str, participant: str) -> None:
        """:meth:`vote` for the event loop: with Redis an async round trip, never a blocking one."""
        windows = self._vote_windows(client, participant)
        if windows:
            self._refuse("votes", await self.log.ahit_many(windows, self.clock()))

    def statement(self, client: str, participant: str) -> None:
        self.hit("statements-ip", client, self.limits.statements_per_ip)
        self.hit("statements", participant, self.limits.statements_per_participant)
