"""Per-key rate limits: the in-process bucket, and the Redis bucket shared by several processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from reelgate.errors import RateLimited
from reelgate.ratelimit import LocalRateLimiter, RedisRateLimiter

REDIS = "redis://127.0.0.1:6379/15"


async def _spend(limiter: LocalRateLimiter | RedisRateLimiter, key: int, n: int, per_minute: int) -> int:
    refused = 0
    for _ in range(n):
        try:
            await limiter.check(key, per_minute)
        except RateLimited as exc:
            refused += 1
            assert int(exc.headers["Retry-After"]) >= 1 and exc.status == 429
    return refused


async def test_local_bucket_allows_the_burst_then_refuses() -> None:
    assert await _spend(LocalRateLimiter(), 1, 70, 60) == 10
    assert await _spend(LocalRateLimiter(), 1, 10, 0) == 0  # 0 = unlimited


@pytest.fixture
async def redis_available() -> AsyncIterator[None]:
    client = aioredis.from_url(REDIS)
    try:
        await client.ping()
    except OSError as exc:
        pytest.skip(f"Redis at {REDIS} unreachable: {exc}")
    finally:
        await client.aclose()
    yield


async def test_redis_bucket_is_shared_between_processes(redis_available: None) -> None:
    key = uuid.uuid4().int % 10**9
    one, two = RedisRateLimiter(REDIS), RedisRateLimiter(REDIS)  # two limiters stand for two API processes
    try:
        refused = await asyncio.gather(_spend(one, key, 40, 60), _spend(two, key, 40, 60))
        assert 18 <= sum(refused) <= 20  # about 60 allowed in total (plus refill), not 60 each
    finally:
        await one.aclose()
        await two.aclose()
