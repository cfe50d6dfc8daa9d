"""Redis behind the rate limiter going away, or hanging: the API fails open to a per-process bucket, never 500."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from fakes.silent_tcp import SilentServer
from fakes.tcp_proxy import TcpProxy
from harness import Api, auth, make_settings, open_api
from procs import create_key, free_port, reelgate_env, serve

REDIS_PORT = 6379
DB = 15  # the test database of the local Redis (tests/unit/test_ratelimit.py uses it too)


@pytest.fixture
async def redis_db() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(f"redis://127.0.0.1:{REDIS_PORT}/{DB}")
    try:
        await client.ping()
    except OSError as exc:
        await client.aclose()
        pytest.skip(f"Redis at 127.0.0.1:{REDIS_PORT} unreachable: {exc}")
    yield client
    await client.aclose()


async def _bucket(api: Api, key: str, redis: aioredis.Redis) -> str:
    """The Redis key of this API key's bucket, emptied: key ids restart at 1 in every test database."""
    owner = await api.app.state.ctx.keys.owner(f"Bearer {key}")
    name = f"reelgate:rl:{owner.key_id}"
    await redis.delete(name)
    return name


async def _until_refused(api: Api, key: str, most: int) -> int:
    """Requests answered 200 before the first 429 (which must be the contract's body with Retry-After)."""
    for n in range(most):
        r = await api.client.get("/v1/tasks", headers=auth(key))
        if r.status_code == 429:
            assert r.json()["error"]["type"] == "rate_limit_error" and int(r.headers["Retry-After"]) >= 1
            return n
        assert r.status_code == 200, r.text
    raise AssertionError(f"no 429 within {most} requests")


async def test_a_working_redis_holds_the_shared_limit(tmp_path: Path, db_url: str, redis_db: aioredis.Redis) -> None:
    settings = make_settings(tmp_path, db_url, redis_url=f"redis://127.0.0.1:{REDIS_PORT}/{DB}",
                             rate_limit_per_minute=5)  # fmt: skip
    async with open_api(settings) as api:
        key = await api.key()
        bucket = await _bucket(api, key, redis_db)
        ready = await api.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["rate_limiter"] == {"store": "redis", "status": "ok"}
        assert await _until_refused(api, key, 10) == 5
        assert await redis_db.exists(bucket)  # the bucket lives in Redis, not in this process


async def test_redis_outage_fails_open_to_a_local_bucket_and_recovers(
    tmp_path: Path, db_url: str, redis_db: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with TcpProxy(REDIS_PORT) as proxy:
        settings = make_settings(tmp_path, db_url, redis_url=f"redis://127.0.0.1:{proxy.port}/{DB}",
                                 rate_limit_per_minute=8)  # fmt: skip
        async with open_api(settings) as api:
            key = await api.key()
            bucket = await _bucket(api, key, redis_db)
            assert (await api.client.get("/v1/tasks", headers=auth(key))).status_code == 200
            assert await redis_db.exists(bucket)
            proxy.cut(600)  # every connection dropped, new ones refused: Redis is gone
            caplog.set_level(logging.INFO, logger="reelgate")
            down = await api.client.get("/v1/tasks", headers=auth(key))
            assert down.status_code == 200, down.text  # was 500 (redis.exceptions.ConnectionError)
            ready = await api.client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
            assert ready.json()["rate_limiter"]["status"] == "degraded"
            # Fail open to this process's own bucket, not to no limit at all: 8 per minute, one spent above.
            assert await _until_refused(api, key, 20) == 7
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "rate limiter" in r.getMessage()]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]  # once per outage, not per request
            page = (await api.client.get("/metrics")).text
            assert _sample(page, "reelgate_ratelimit_redis_outages_total") == 1
            assert _sample(page, "reelgate_ratelimit_local_fallbacks_total") >= 9
            await redis_db.delete(bucket)
            proxy.cut(0)  # Redis is back
            deadline = time.monotonic() + 5
            while (await api.client.get("/readyz")).json()["rate_limiter"]["status"] != "ok":
                assert time.monotonic() < deadline, "the limiter did not go back to Redis"
                await asyncio.sleep(0.1)
            assert (await api.client.get("/v1/tasks", headers=auth(key))).status_code == 200
            assert await redis_db.exists(bucket)  # shared again
            assert any(r.levelno == logging.INFO and "Redis answers again" in r.getMessage() for r in caplog.records)


def _sample(page: str, name: str) -> float:
    for line in page.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not on /metrics")


async def test_a_hung_redis_costs_one_short_timeout_not_every_request(tmp_path: Path, db_url: str) -> None:
    with SilentServer() as hung:
        settings = make_settings(tmp_path, db_url, redis_url=f"redis://127.0.0.1:{hung.port}/{DB}")
        async with open_api(settings) as api:
            key = await api.key()
            started = time.perf_counter()
            first = await asyncio.wait_for(api.client.get("/v1/tasks", headers=auth(key)), 5)
            first_s = time.perf_counter() - started
            assert first.status_code == 200, first.text
            assert first_s < 0.5, f"the first request waited {first_s:.2f} s on a hung Redis"
            started = time.perf_counter()
            for _ in range(40):
                assert (await api.client.get("/v1/tasks", headers=auth(key))).status_code == 200
            # 40 requests each waiting out a 100 ms timeout would take 4 s; they skip Redis while it is down.
            assert time.perf_counter() - started < 1.5
            ready = await asyncio.wait_for(api.client.get("/readyz"), 5)
            assert ready.status_code == 200 and ready.json()["rate_limiter"]["status"] == "degraded"


def test_a_served_process_answers_through_a_stopped_redis(tmp_path: Path) -> None:
    """The real server: ``reelgate serve`` with REELGATE_REDIS_URL at a TCP server that is then stopped."""
    port = free_port()
    proxy = TcpProxy(REDIS_PORT).__enter__()
    env = reelgate_env(tmp_path / "data", f"sqlite:///{tmp_path / 'r.db'}",
                       REELGATE_REDIS_URL=f"redis://127.0.0.1:{proxy.port}/{DB}")  # fmt: skip
    try:
        key = create_key(env)
        proc = serve(env, port, tmp_path / "serve.log")
        try:
            base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
            assert httpx.get(f"{base}/v1/tasks", headers=headers, timeout=5).status_code == 200
            proxy.__exit__(None, None, None)  # the listener closed, every connection cut: connection refused
            for _ in range(5):
                r = httpx.get(f"{base}/v1/tasks", headers=headers, timeout=5)
                assert r.status_code == 200, r.text
            ready = httpx.get(f"{base}/readyz", timeout=5)
            assert ready.status_code == 200 and ready.json()["rate_limiter"]["status"] == "degraded"
            assert "reelgate_ratelimit_redis_outages_total 1.0" in httpx.get(f"{base}/metrics", timeout=5).text
        finally:
            proc.stop()
    finally:
        proxy.__exit__(None, None, None)
