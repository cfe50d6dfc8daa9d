"""Shared rate limiting: a token bucket in Redis (what Reelgate uses) against the same bucket as a PostgreSQL row.

Prints checks per second and mean latency for each with 32 concurrent callers on one key, and the ratio.
Usage: .venv/bin/python bench/ratelimit.py [--duration 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid

import asyncpg

from reelgate.errors import RateLimited
from reelgate.ratelimit import RedisRateLimiter

PG = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/15"
PG_BUCKET = """
INSERT INTO bench_buckets AS b (key, tokens, stamp) VALUES ($1, $2 - 1, $3)
ON CONFLICT (key) DO UPDATE SET
  tokens = LEAST($2, b.tokens + ($3 - b.stamp) * $4) - 1, stamp = $3
RETURNING tokens
"""


async def _drive(check: object, seconds: float, callers: int = 32) -> tuple[int, float]:
    done = 0
    spent = 0.0
    stop = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done, spent
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await check()  # type: ignore[operator]
            spent += time.perf_counter() - started
            done += 1

    await asyncio.gather(*(caller() for _ in range(callers)))
    return done, spent / max(done, 1)


async def redis_bucket(seconds: float) -> tuple[int, float]:
    limiter = RedisRateLimiter(REDIS)
    key = uuid.uuid4().int % 10**9

    async def check() -> None:
        with contextlib.suppress(RateLimited):
            await limiter.check(key, 10**9)

    try:
        return await _drive(check, seconds)
    finally:
        await limiter.aclose()


async def postgres_bucket(seconds: float) -> tuple[int, float]:
    pool = await asyncpg.create_pool(PG, min_size=8, max_size=16)
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_buckets (key TEXT PRIMARY KEY, tokens DOUBLE PRECISION, "
                       "stamp DOUBLE PRECISION)")  # fmt: skip
    key = uuid.uuid4().hex

    async def check() -> None:
        await pool.fetchval(PG_BUCKET, key, 1e9, time.time(), 1e9 / 60)

    try:
        return await _drive(check, seconds)
    finally:
        await pool.execute("DROP TABLE IF EXISTS bench_buckets")
        await pool.close()


async def main(seconds: float) -> None:
    r_count, r_lat = await redis_bucket(seconds)
    p_count, p_lat = await postgres_bucket(seconds)
    print(f"{'store':<12}{'checks/s':>12}{'mean latency':>16}")
    print(f"{'redis':<12}{r_count / seconds:>12,.0f}{r_lat * 1e6:>13,.0f} µs")
    print(f"{'postgresql':<12}{p_count / seconds:>12,.0f}{p_lat * 1e6:>13,.0f} µs")
    print(f"ratio redis/postgresql throughput: {r_count / max(p_count, 1):.2f}x (32 callers, one hot key)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0)
    asyncio.run(main(parser.parse_args().duration))
