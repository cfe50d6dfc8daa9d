"""Per-key request rate limits: a token bucket per API key, in-process or shared through Redis."""

from __future__ import annotations

import math
import time
from typing import Protocol

from reelgate.errors import RateLimited


class RateLimiter(Protocol):
    async def check(self, key_id: int, per_minute: int) -> None:
        """Raise RateLimited (with Retry-After) when the key has used up its budget."""


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
    """The same token bucket kept in Redis, updated atomically by a Lua script: shared by every process."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis  # optional dependency, only loaded when REELGATE_REDIS_URL is set

        self._redis = aioredis.from_url(url)
        self._script = self._redis.register_script(_REDIS_BUCKET)

    async def check(self, key_id: int, per_minute: int) -> None:
        if per_minute <= 0:
            return
        rate = per_minute / 60.0
        now = await self._redis.time()
        wait = float(await self._script(keys=[f"reelgate:rl:{key_id}"], args=[per_minute, rate, now[0] + now[1] / 1e6]))
        if wait > 0:
            raise _limited(wait, per_minute)

    async def aclose(self) -> None:
        await self._redis.aclose()
