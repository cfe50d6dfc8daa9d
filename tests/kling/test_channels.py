"""Several Kling accounts: failover on account errors, deadlines, deletes and Kling's callback as a poll hint."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from fakes.kling_server import FakeKling
from kling.harness import AK_B, PRICE, SK_B, Gate, channel, gateway, params, settings_for, write_config
from reelgate.api import upstream_hook
from reelgate.api.context import ApiContext
from reelgate.auth import KeyCache
from reelgate.errors import NotFound, UpstreamError
from reelgate.providers.kling.provider import KlingProvider
from reelgate.ratelimit import LocalRateLimiter


@pytest.fixture
def fake_b() -> Iterator[FakeKling]:
    with FakeKling(access_keys={AK_B: SK_B}) as server:
        yield server


def _two_channels(tmp_path: Path, a: FakeKling, b: FakeKling) -> str:
    return write_config(tmp_path / "kling.json", [channel("alpha", a), channel("beta", b, ak=AK_B, sk=SK_B)])


async def test_account_error_moves_the_task_to_another_channel(
    tmp_path: Path, db_url: str, fake: FakeKling, fake_b: FakeKling, images: tuple[str, str]
) -> None:
    fake.queue_error("create", 1101)  # account in arrears on the first channel picked
    async with gateway(settings_for(tmp_path, db_url, _two_channels(tmp_path, fake, fake_b))) as gate:
        first = await gate.wait(await gate.submit(params(images)))
        second = await gate.wait(await gate.submit(params(images, element_name="Blue fox")))
        assert (first.status, second.status) == ("completed", "completed")
        assert (await gate.ledger())["capture"] == 2 * PRICE
        assert first.result is not None
        element = await gate.rt.store.elements.get(first.result["element_id"], gate.owner.account_id)
        assert element is not None and element.upstream_id is not None and element.upstream_id.startswith("beta:")
    # alpha refused once and then stayed out of rotation; both tasks exist once, on beta.
    assert [r.route for r in fake.requests()] == ["create"] and fake.tasks() == []
    assert sorted(t.external_task_id or "" for t in fake_b.tasks()) == sorted([first.id, second.id])


async def test_no_healthy_channel_fails_with_service_error_and_no_account_detail(
    tmp_path: Path, db_url: str, fake: FakeKling, fake_b: FakeKling, images: tuple[str, str]
) -> None:
    fake.queue_error("create", 1101)
    fake_b.queue_error("create", 1004)
    async with gateway(settings_for(tmp_path, db_url, _two_channels(tmp_path, fake, fake_b))) as gate:
        task = await gate.wait(await gate.submit(params(images)))
        assert (task.status, task.error_code) == ("failed", "service_error")
        message = (task.error_message or "").lower()
        assert not any(word in message for word in ("arrear", "alpha", "beta", "authoriz", "1101", "1004"))
        assert await gate.ledger() == {"grant": 50 * PRICE, "reserve": PRICE, "release": PRICE}
        # Both accounts are now out of rotation: the next task fails at once, with no upstream call.
        again = await gate.wait(await gate.submit(params(images)))
        assert again.error_code == "service_error"
    assert len(fake.requests()) == 1 and len(fake_b.requests()) == 1


async def test_unknown_status_keeps_polling_until_the_deadline(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str]
) -> None:
    data = {"task_id": "kling-1", "task_status": "paused_for_review", "task_info": {}, "task_result": {}}
    answer = json.dumps({"code": 0, "message": "SUCCEED", "request_id": "r", "data": data})
    fake.queue_raw("get", 200, answer, content_type="application/json", times=10_000)
    config = write_config(tmp_path / "kling.json", [channel("main", fake)])
    async with gateway(settings_for(tmp_path, db_url, config, task_deadline=1.5)) as gate:
        task = await gate.wait(await gate.submit(params(images)))
        assert (task.status, task.error_code, task.charged) == ("failed", "generation_timeout", 0)
        assert (await gate.ledger())["release"] == PRICE
    assert len(fake.requests("get")) >= 3 and len(fake.requests("create")) == 1


async def _completed_element(gate: Gate, images: tuple[str, str]) -> str:
    task = await gate.wait(await gate.submit(params(images)))
    assert task.status == "completed" and task.result is not None
    return str(task.result["element_id"])


async def test_delete_is_idempotent_and_goes_to_the_creating_channel(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str]
) -> None:
    config = write_config(tmp_path / "kling.json", [channel("main", fake)])
    async with gateway(settings_for(tmp_path, db_url, config)) as gate:
        element_id = await _completed_element(gate, images)
        fake.queue_error("delete", 5000)
        with pytest.raises(UpstreamError):  # upstream failed: nothing changes here, the caller may retry
            await gate.rt.service.delete_element(element_id, gate.owner)
        await gate.rt.service.delete_element(element_id, gate.owner)
        with pytest.raises(NotFound):
            await gate.rt.service.element(element_id, gate.owner)
        provider = gate.rt.providers["kling"]
        await provider.delete_element(f"main:{element_id}", {})  # already gone upstream: still success
        await provider.delete_element(element_id, {})  # a bare id is tried on every channel
    assert [r.json() for r in fake.requests("delete")] == [{"element_id": element_id}] * 4


def _hint_app(gate: Gate) -> Starlette:
    ctx = ApiContext(gate.rt.service, KeyCache(gate.rt.store.accounts, 1.0), gate.rt.metrics, LocalRateLimiter())
    return Starlette(routes=upstream_hook.routes(ctx))


async def test_kling_callback_is_a_hint_to_poll_now(tmp_path: Path, db_url: str, images: tuple[str, str]) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with FakeKling(access_keys={AK_B: SK_B}, polls_per_step=None, callbacks=True) as fake:
        config = write_config(tmp_path / "kling.json", [channel("main", fake, ak=AK_B, sk=SK_B)], poll_initial=60,
                              poll_max=60, callback_base_url=base, callback_secret="s" * 32)  # fmt: skip
        async with gateway(settings_for(tmp_path, db_url, config)) as gate:
            server = uvicorn.Server(uvicorn.Config(_hint_app(gate), lifespan="off", log_config=None))
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                task_id = await gate.submit(params(images))
                await _until_async(lambda: _polling(gate, task_id))
                async with httpx.AsyncClient() as client:  # a forged signature moves nothing
                    forged = await client.post(f"{base}/hooks/kling/{task_id}/{'0' * 32}", json={})
                assert forged.status_code == 404
                fake.set_status(task_id, "succeed")  # Kling calls back; without the hint the next poll is 60 s away
                task = await gate.wait(task_id, timeout=5)
            finally:
                server.should_exit = True
                await serving
        assert task.status == "completed"
        sent = fake.requests("create")[0].json()["callback_url"]
        provider = gate.rt.providers["kling"]
        assert isinstance(provider, KlingProvider) and sent == base + provider.hook_path(task_id)
        assert [c.http_status for c in fake.callbacks_sent()] == [200]


async def _polling(gate: Gate, task_id: str) -> bool:
    row = await gate.rt.store.db.read(lambda c: c.one("SELECT state FROM tasks WHERE id = :id", {"id": task_id}))
    return row is not None and json.loads(row["state"]).get("phase") == "polling"


async def _until_async(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)
