"""Sliding-window event logs for the abuse limits: in this process's memory, or in Redis for every process.

The join/vote/statement limits (``limits.py``) and the login backoff (``accounts.LoginLimiter``) count
events per key in time windows. One server process can keep them in memory (:class:`MemoryLog`, the
default: SQLite, ``ccai serve`` with one worker, no extra service). Several processes, or several machines,
on one PostgreSQL must count together or a client gets N times every limit and a locked-out guesser moves
to the next worker: :class:`RedisLog` keeps the same windows in Redis (a sorted set of timestamps per key,
each check one atomic script), chosen by ``CCAI_REDIS_URL``. Redis rather than PostgreSQL because every vote
passes a limit: a PostgreSQL write per vote would double the vote path's database work, while a Redis
script costs about a tenth of a millisecond and keeps nothing that must survive a restart.

Keys are salted digests made by the callers (no client address is kept in clear); times are wall-clock
seconds, the one clock several machines share.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque

# drop events older than the window, then refuse (the wait, in seconds) or record; atomic in Redis
_HIT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tostring(tonumber(first[2]) + window - now)
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return '0'
"""


# several windows at once, all or nothing: KEYS = the keys; ARGV = now, member, then window and limit per key
_HIT_MANY = """
local now, member, wait = tonumber(ARGV[1]), ARGV[2], 0
for i, key in ipairs(KEYS) do
  local window, limit = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(first[2]) + window - now)
  end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[1 + 2 * i]) * 1000))
end
return '0'
"""

Window = tuple[str, int, float]  # key, limit, seconds


class MemoryLog:
    """Event times per key in this process (thread-safe: sync handlers run in a thread pool)."""

    def __init__(self, max_keys: int = 50_000):
        self.events: dict[str, deque[float]] = {}
        self.marks: set[str] = set()
        self.max_keys, self.lock = max_keys, threading.Lock()

    def _recent(self, key: str, window: float, now: float) -> deque[float]:
        times = self.events.get(key, deque())
        while times and times[0] <= now - window:
            times.popleft()
        return times

    def recent(self, key: str, window: float, now: float) -> list[float]:
        with self.lock:
            return list(self._recent(key, window, now))

    def add(self, key: str, window: float, now: float) -> None:
        with self.lock:
            if len(self.events) > self.max_keys:  # forget keys with nothing in the last hour
                self.events = {k: t for k, t in self.events.items() if t and t[-1] > now - 3600}
            self.events[key] = self._recent(key, window, now)
            self.events[key].append(now)

    def hit(self, key: str, limit: int, window: float, now: float) -> float:
        """Record one event, or return how many seconds to wait when ``limit`` are already in the window."""
        with self.lock:
            times = self._recent(key, window, now)
            if len(times) >= limit:
                return times[0] + window - now
        self.add(key, window, now)
        return 0.0

    def hit_many(self, windows: list[Window], now: float) -> float:
        """:meth:`hit` for several windows at once: refused (the longest wait) unless every one has room;
        then recorded in all."""
        with self.lock:
            waits = [
                times[0] + window - now
                for key, limit, window in windows
                if len(times := self._recent(key, window, now)) >= limit
            ]
        if waits:
            return max(waits)
        for key, _limit, window in windows:
            self.add(key, window, now)
        return 0.0

    async def ahit_many(self, windows: list[Window], now: float) -> float:
        return self.hit_many(windows, now)

    def clear(self, key: str) -> None:
        with self.lock:
            self.events.pop(key, None)

    def mark(self, key: str, ttl: float) -> None:
        with self.lock:
            if len(self.marks) > 100_000:
                self.marks.clear()
            self.marks.add(key)

    def marked(self, key: str) -> bool:
        return key in self.marks

    def reset(self) -> None:
        with self.lock:
            self.events.clear()
            self.marks.clear()


class RedisLog:
    """The same windows in Redis, shared by every process that names the same server and ``prefix``."""

    def __init__(self, url: str, prefix: str = "ccai"):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.url, self.prefix = url, prefix
        self._hit = self.client.register_script(_HIT)
        self._hit_many = self.client.register_script(_HIT_MANY)
        self._async: dict[int, tuple] = {}  # event loop id -> (asyncio client, script)

    def _k(self, key: str) -> str:
        return f"{self.prefix}:w:{key}"

    def recent(self, key: str, window: float, now: float) -> list[float]:
        pipe = self.client.pipeline()
        pipe.zremrangebyscore(self._k(key), "-inf", now - window)
        pipe.zrange(self._k(key), 0, -1, withscores=True)
        return [score for _member, score in pipe.execute()[1]]

    def add(self, key: str, window: float, now: float) -> None:
        pipe = self.client.pipeline()
        pipe.zadd(self._k(key), {f"{now:.6f}:{secrets.token_hex(4)}": now})
        pipe.pexpire(self._k(key), int(window * 1000) + 1)
        pipe.execute()

    def hit(self, key: str, limit: int, window: float, now: float) -> float:
        wait = self._hit(keys=[self._k(key)], args=[now, window, limit, f"{now:.6f}:{secrets.token_hex(4)}"])
        return float(wait)

    def _many_args(self, windows: list[Window], now: float) -> tuple[list[str], list]:
        args: list = [now, f"{now:.6f}:{secrets.token_hex(4)}"]
        for _key, limit, window in windows:
            args += [window, limit]
        return [self._k(key) for key, _limit, _window in windows], args

    def hit_many(self, windows: list[Window], now: float) -> float:
        keys, args = self._many_args(windows, now)
        return float(self._hit_many(keys=keys, args=args))

    async def ahit_many(self, windows: list[Window], now: float) -> float:
        """:meth:`hit_many` on the running event loop (redis.asyncio): one round trip, no thread."""
        import asyncio

        import redis.asyncio

        loop = id(asyncio.get_running_loop())
        if loop not in self._async:
            client = redis.asyncio.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            self._async = {loop: (client, client.register_script(_HIT_MANY))}
        _client, script = self._async[loop]
        keys, args = self._many_args(windows, now)
        return float(await script(keys=keys, args=args))

    def clear(self, key: str) -> None:
        self.client.delete(self._k(key))

    def mark(self, key: str, ttl: float) -> None:
        self.client.set(f"{self.prefix}:m:{key}", 1, ex=max(1, int(ttl)))

    def marked(self, key: str) -> bool:
        return bool(self.client.exists(f"{self.prefix}:m:{key}"))

    def reset(self) -> None:
        for name in self.client.scan_iter(f"{self.prefix}:*", count=1000):
            self.client.delete(name)


def make_log(redis_url: str = "", prefix: str = "ccai") -> MemoryLog | RedisLog:
    """Redis when a URL is given (several processes), else this process's memory."""
    return RedisLog(redis_url, prefix) if redis_url else MemoryLog()
