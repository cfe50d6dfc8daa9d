"""``GET /metrics`` on both engines: the queue gauges cost at most one database read per QUEUE_STATS_MAX_AGE
however often it is scraped, they follow the database within that age, and REELGATE_METRICS_TOKEN closes the page
to anyone without the token (the contract's 401 body); without it the page stays open, as documented."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from harness import Api, b64_jpeg, image_body, make_settings
from reelgate import metrics as metrics_module
from reelgate.config import ConfigError, Settings
from reelgate.runtime import build_app
from reelgate.store.tasks import TaskStore

TOKEN = "m3tr1cs-t0ken-0123456789"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every queue_stats read the process makes (the real query runs; only the calls are counted)."""
    calls: list[float] = []
    original = TaskStore.queue_stats

    async def counted(self: TaskStore, now: float) -> tuple[int, float]:
        calls.append(now)
        return await original(self, now)

    monkeypatch.setattr(TaskStore, "queue_stats", counted)
    return calls


@contextlib.asynccontextmanager
async def queued_api(settings: Settings) -> AsyncIterator[Api]:
    """The app with no worker, so submitted tasks stay due in the queue."""
    app, rt = build_app(settings, worker=False, dispatcher=False)
    for start in app.state.ctx.on_startup:
        await start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            yield Api(client, rt, app)
    finally:
        for stop in app.state.ctx.on_shutdown:
            await stop()


def gauge(page: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", page, re.M)
    assert found, f"{name} not on the page"
    return float(found.group(1))


async def test_the_documented_max_age_is_5_s() -> None:
    assert metrics_module.QUEUE_STATS_MAX_AGE == 5.0


async def test_a_scrape_flood_reads_the_queue_once(settings: Settings, reads: list[float]) -> None:
    async with queued_api(settings) as api:
        for _ in range(30):
            assert (await api.client.get("/metrics")).status_code == 200
        pages = await asyncio.gather(*(api.client.get("/metrics") for _ in range(30)))
        assert {p.status_code for p in pages} == {200}
    assert len(reads) == 1  # 60 scrapes within the max age: one COUNT, not 60


async def test_concurrent_scrapes_share_one_read(settings: Settings, reads: list[float]) -> None:
    async with queued_api(settings) as api:
        pages = await asyncio.gather(*(api.client.get("/metrics") for _ in range(20)))
        assert {p.status_code for p in pages} == {200}
    assert len(reads) == 1


async def test_queue_gauges_follow_the_database_within_the_max_age(
    settings: Settings, reads: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with queued_api(settings) as api:
        key = await api.key(credits=5)
        assert (await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).status_code == 200
        first = (await api.client.get("/metrics")).text
        assert gauge(first, "reelgate_queue_depth") == 1
        assert (await api.submit(key, image_body(b64_jpeg(3), b64_jpeg(4)))).status_code == 200
        await asyncio.sleep(0.2)
        cached = (await api.client.get("/metrics")).text
        assert gauge(cached, "reelgate_queue_depth") == 1  # within the max age: not read again
        # the oldest task's age still moves with the clock between reads
        oldest = "reelgate_queue_oldest_due_seconds"
        assert gauge(cached, oldest) >= gauge(first, oldest) + 0.15
        monkeypatch.setattr(metrics_module, "QUEUE_STATS_MAX_AGE", 0.0)  # as if the max age had passed
        assert gauge((await api.client.get("/metrics")).text, "reelgate_queue_depth") == 2
    assert len(reads) == 2


async def test_without_a_token_the_page_is_open(settings: Settings) -> None:
    async with queued_api(settings) as api:
        assert (await api.client.get("/metrics")).status_code == 200


async def test_the_metrics_token_closes_the_page(tmp_path: Path, db_url: str) -> None:
    async with queued_api(make_settings(tmp_path, db_url, metrics_token=TOKEN)) as api:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN},
                        {"Authorization": "Bearer t\u00e9st-0123456789abcdef".encode()}):  # fmt: skip
            answer = await api.client.get("/metrics", headers=headers)
            assert answer.status_code == 401, headers
            assert answer.json()["error"]["code"] == "invalid_metrics_token"
            assert answer.json()["error"]["type"] == "authentication_error"
            assert answer.headers["www-authenticate"].startswith("Bearer")
        page = await api.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert page.status_code == 200 and "reelgate_queue_depth" in page.text
        assert TOKEN not in page.text


def test_the_metrics_token_setting() -> None:
    settings = Settings.from_env({"REELGATE_METRICS_TOKEN": TOKEN})
    assert settings.metrics_token == TOKEN and TOKEN not in repr(settings)
    assert Settings.from_env({}).metrics_token == ""
    for weak in ("short", "has a space in it 0123", "t\u00e9st-token-0123456789"):
        with pytest.raises(ConfigError, match="REELGATE_METRICS_TOKEN"):
            Settings.from_env({"REELGATE_METRICS_TOKEN": weak})
