"""Per-key request rate limits: a token bucket per API key, in-process or shared through Redis (failing open)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from reelgate.errors import RateLimited

log = logging.getLogger("reelgate.ratelimit")

# A hung Redis may hold one request this long; after that the request is limited locally, so a stall never
# spreads to every request. A check on a healthy local Redis takes well under a millisecond.
REDIS_TIMEOUT = 0.1
# While Redis is down, one check per interval (and every /readyz) tries it again; the rest go straight to the
# per-process bucket without waiting on a dead or hung server.
RETRY_INTERVAL = 1.0


class RateLimiter(Protocol):
    async def check(self, key_id: int, per_minute: int) -> None:
        """Raise RateLimited (with Retry-After) when the key has used up its budget."""

    async def health(self) -> dict[str, str]:
        """Where the buckets live and whether that store answers, for /readyz."""


def _limited(retry_after: float, per_minute: int) -> RateLimited:
    seconds = max(1, math.ceil(retry_after))
    return RateLimited(
        f"rate limit of {per_minute} requests per minute exceeded for this API key; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


class LocalRateLimiter:
    """A token bucket per key in this process: exact for one process, per-process for several."""

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}

    async def check(self, key_id: int, per_minute: int) -> None:
        if per_minute <= 0:
            return
        rate = per_minute / 60.0
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key_id, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - stamp) * rate)
        if tokens < 1.0:
            self._buckets[key_id] = (tokens, now)
            raise _limited((1.0 - tokens) / rate, per_minute)
        self._buckets[key_id] = (tokens - 1.0, now)

    async def health(self) -> dict[str, str]:
        return {"store": "local", "status": "ok"}


_REDIS_BUCKET = """
local key, cap, rate, now = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', key, 't', 's')
local tokens, stamp = tonumber(state[1]) or cap, tonumber(state[2]) or now
tokens = math.min(cap, tokens + (now - stamp) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate else tokens = tokens - 1 end
redis.call('HSET', key, 't', tokens, 's', now)
redis.call('PEXPIRE', key, math.ceil(cap / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    """The same token bucket kept in Redis, updated atomically by a Lua script: shared by every process.

    When Redis is unreachable, answers an error or takes longer than ``timeout``, the check fails open to a
    token bucket in this process (the same per-key limit, now per process) rather than failing the request:
    a shared counter is not worth an outage of every authenticated route. The outage is logged once, counted in
    ``reelgate_ratelimit_redis_outages_total`` and shown as ``degraded`` on /readyz, which stays ready.
    """

    def __init__(self, url: str, *, registry: CollectorRegistry | None = None, timeout: float = REDIS_TIMEOUT,
                 retry_interval: float = RETRY_INTERVAL) -> None:  # fmt: skip
        import redis.asyncio as aioredis  # optional dependency, only loaded when REELGATE_REDIS_URL is set
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        # No retries inside redis-py: a failed call falls back at once, and the next try waits for the interval.
        self._redis = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                        retry=Retry(NoBackoff(), 0))  # fmt: skip
        self._script = self._redis.register_script(_REDIS_BUCKET)
        self._failures: tuple[type[Exception], ...] = (RedisError, OSError)  # TimeoutError is an OSError
        self._timeout, self._retry_interval = timeout, retry_interval
        self._local = LocalRateLimiter()
        self._down_since: float | None = None
        self._next_try = 0.0
        self._error = ""
        self._outages = Counter("reelgate_ratelimit_redis_outages", "Times Redis became unreachable for the "
                                "rate limiter", registry=registry)  # fmt: skip
        self._fallbacks = Counter("reelgate_ratelimit_local_fallbacks", "Rate limit checks answered by the "
                                  "per-process bucket because Redis was down", registry=registry)  # fmt: skip
        self._up = Gauge("reelgate_ratelimit_redis_up", "1 while the rate limiter reaches Redis", registry=registry)
        self._up.set(1)

    async def check(self, key_id: int, per_minute: int) -> None:
        if per_minute <= 0:
            return
        if self._down_since is not None and not self._may_try():
            await self._fall_back(key_id, per_minute)
            return
        try:
            wait = await asyncio.wait_for(self._take(key_id, per_minute), self._timeout)
        except self._failures as exc:
            self._went_down(exc)
            await self._fall_back(key_id, per_minute)
            return
        self._came_back()
        if wait > 0:
            raise _limited(wait, per_minute)

    async def health(self) -> dict[str, str]:
        """Ping Redis (within the timeout): reports the state, and notices a recovery when no check has yet."""
        try:
            await asyncio.wait_for(self._redis.ping(), self._timeout)
        except self._failures as exc:
            self._went_down(exc)
        else:
            self._came_back()
        if self._down_since is None:
            return {"store": "redis", "status": "ok"}
        return {"store": "redis", "status": "degraded", "fallback": "per-process bucket", "error": self._error}

    async def _take(self, key_id: int, per_minute: int) -> float:
        now = await self._redis.time()
        args = [per_minute, per_minute / 60.0, now[0] + now[1] / 1e6]
        return float(await self._script(keys=[f"reelgate:rl:{key_id}"], args=args))

    async def _fall_back(self, key_id: int, per_minute: int) -> None:
        self._fallbacks.inc()
        await self._local.check(key_id, per_minute)

    def _may_try(self) -> bool:
        """True for the first check after the retry interval; it pushes the next try one interval on."""
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self._retry_interval
        return True

    def _went_down(self, exc: Exception) -> None:
        self._error = type(exc).__name__
        self._next_try = time.monotonic() + self._retry_interval
        if self._down_since is not None:
            return
        self._down_since = time.monotonic()
        self._outages.inc()
        self._up.set(0)
        log.warning("rate limiter: Redis unreachable, limiting per process until it answers",
                    extra={"error": f"{type(exc).__name__}: {exc}"})  # fmt: skip

    def _came_back(self) -> None:
        if self._down_since is None:
            return
        seconds = time.monotonic() - self._down_since
        self._down_since = None
        self._up.set(1)
        log.info(
            "rate limiter: Redis answers again; limits are shared again", extra={"down_seconds": round(seconds, 1)}
        )

    async def aclose(self) -> None:
        await self._redis.aclose()
