"""Hostile callback receivers against a real server: an endless reply body, and one tenant's slow receiver holding
the dispatcher while another tenant waits for its callback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from fakes.receiver import ENDLESS, Receiver
from harness import Api, auth, b64_jpeg, image_body, make_settings, open_api
from procs import create_key, free_port, reelgate_env, serve
from reelgate.config import Settings
from reelgate.dispatcher import Dispatcher
from reelgate.store.sql import Store

MB = 1024 * 1024
SHIPPED = Settings()  # the per-account cap and dispatcher size under test are the shipped defaults
ATTACKER_TASKS = 300


def _memory_kb(pid: int) -> dict[str, int]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines) if k in ("VmRSS", "VmHWM")}


async def _delivery_log(client: httpx.AsyncClient, key: str, task_id: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log: dict[str, Any] = (await client.get(f"/v1/tasks/{task_id}/callbacks", headers=auth(key))).json()
        if log["data"]:
            return log
        await asyncio.sleep(0.05)
    raise AssertionError(f"no callback attempt logged for {task_id} in {timeout} s")


async def _poll_worst(client: httpx.AsyncClient, key: str, task_id: str, stop: asyncio.Event) -> float:
    """Another tenant polling its task every 20 ms meanwhile: the slowest answer, in seconds."""
    worst = 0.0
    while not stop.is_set():
        started = time.perf_counter()
        assert (await client.get(f"/v1/tasks/{task_id}", headers=auth(key))).status_code == 200
        worst = max(worst, time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return worst


async def test_an_endless_reply_body_is_not_read_into_memory(tmp_path: Path, db_url: str) -> None:
    env = reelgate_env(tmp_path, db_url, REELGATE_CALLBACK_TIMEOUT="1", REELGATE_CALLBACK_RETRY_DELAYS="0.2,0.2,0.2")
    acme, other = create_key(env, "acme"), create_key(env, "other")
    port = free_port()
    proc = serve(env, port, tmp_path / "server.log")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            body = image_body(b64_jpeg(1), b64_jpeg(2))
            polled = (await client.post("/v1/videos/generations", json=body, headers=auth(other))).json()["id"]
            with Receiver([200, ENDLESS]) as hook:
                # A first task with an ordinary receiver: image work and first-use allocations are done before measuring.
                warm = await client.post("/v1/videos/generations", json={**body, "callback_url": hook.url()},
                                         headers=auth(acme))  # fmt: skip
                await _delivery_log(client, acme, warm.json()["id"])
                before = _memory_kb(proc.popen.pid)
                stop = asyncio.Event()
                poller = asyncio.create_task(_poll_worst(client, other, polled, stop))
                hostile = await client.post("/v1/videos/generations", json={**body, "callback_url": hook.url()},
                                            headers=auth(acme))  # fmt: skip
                log = await _delivery_log(client, acme, hostile.json()["id"])
                stop.set()
                worst_get = await poller
                after = _memory_kb(proc.popen.pid)
    finally:
        proc.stop()
    grown = (after["VmHWM"] - before["VmHWM"]) / 1024
    assert grown < 32, f"peak RSS grew {grown:.0f} MB reading an endless callback reply ({before} -> {after})"
    assert worst_get < 0.5, f"another tenant's GET took {worst_get:.2f} s meanwhile"
    attempt = log["data"][0]
    # The status line decides; the body is read for a few KiB at most, then the connection is closed.
    assert attempt["status_code"] == 200 and attempt["error"] is None, attempt
    assert log["delivery"]["status"] == "delivered"
    assert attempt["latency_ms"] < 1000, attempt


async def _submit_and_cancel(api: Api, key: str, callback: str, count: int) -> list[str]:
    """``count`` tasks of ``key``'s tenant, cancelled while pending: refunded, nearly free, each called back."""
    gate = asyncio.Semaphore(16)
    body = {**image_body("http://127.0.0.1:9/front.jpg", "http://127.0.0.1:9/side.jpg"), "callback_url": callback}

    async def one() -> str:
        async with gate:
            task_id = str((await api.submit(key, body)).json()["id"])
            cancelled = await api.client.post(f"/v1/tasks/{task_id}/cancel", headers=auth(key))
            assert cancelled.status_code == 200, cancelled.text
            return task_id

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def _victim_latency(api: Api, key: str, hook: Receiver) -> float:
    """Seconds from the victim's terminal commit (the delivery row's ``created``) to its callback's arrival."""
    (task_id,) = await _submit_and_cancel(api, key, hook.url(), 1)
    got = await asyncio.to_thread(hook.wait_for, 1, 5)
    log = (await api.client.get(f"/v1/tasks/{task_id}/callbacks", headers=auth(key))).json()
    return got[0].at - datetime.fromisoformat(log["delivery"]["created"]).timestamp()


async def _most_in_flight(api: Api, account: str) -> int:
    """The most attempts of ``account`` that overlapped in time, from the delivery log of every dispatcher."""
    acct = await api.rt.store.accounts.account_id(account)
    sql = ("SELECT a.started_at, a.latency_ms FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
           "WHERE d.account_id = :a")  # fmt: skip
    rows = await api.rt.store.db.read(lambda c: c.all(sql, {"a": acct}))
    edges = sorted(e for r in rows for e in ((r["started_at"], 1), (r["started_at"] + r["latency_ms"] / 1000, -1)))
    most = running = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


@contextlib.asynccontextmanager
async def _second_dispatcher(api: Api) -> AsyncIterator[Dispatcher]:
    """Another dispatcher process on the same database: its own Store (own connections, own SQLite writer)."""
    store = await Store.open(api.rt.settings.resolved_database_url, pool_size=4)
    other = Dispatcher(api.rt.settings, store, name="second-dispatcher")
    stop = asyncio.Event()
    running = asyncio.create_task(other.run(stop))
    try:
        yield other
    finally:
        stop.set()
        await running
        await store.close()


async def test_a_slow_tenant_does_not_hold_up_another_tenants_callback(tmp_path: Path, db_url: str) -> None:
    async with open_api(make_settings(tmp_path, db_url, callback_timeout=1.0)) as api:
        api.rt.worker.concurrency = 0  # type: ignore[union-attr]  # tasks stay pending so they can be cancelled
        attacker = await api.key("attacker", credits=ATTACKER_TASKS + 5)
        victim = await api.key("victim")
        # The attacker's receiver answers after 1.5 s: every attempt runs into the 1 s deadline, then retries.
        with Receiver(default=1.5) as slow, Receiver() as fast:
            await _submit_and_cancel(api, attacker, slow.url(), ATTACKER_TASKS)
            await asyncio.to_thread(slow.wait_for, SHIPPED.callback_account_concurrency, 5)
            latency = await _victim_latency(api, victim, fast)
            assert latency < 1.0, f"the victim's callback left {latency:.2f} s after its terminal commit"
        assert await _most_in_flight(api, "attacker") <= SHIPPED.callback_account_concurrency


async def test_the_account_cap_holds_across_two_dispatchers(tmp_path: Path, db_url: str) -> None:
    async with open_api(make_settings(tmp_path, db_url, callback_timeout=1.0)) as api:
        api.rt.worker.concurrency = 0  # type: ignore[union-attr]
        attacker = await api.key("attacker", credits=105)
        victim = await api.key("victim")
        with Receiver(default=1.5) as slow, Receiver() as fast:
            async with _second_dispatcher(api):
                await _submit_and_cancel(api, attacker, slow.url(), 100)
                await asyncio.to_thread(slow.wait_for, SHIPPED.callback_account_concurrency, 5)
                latency = await _victim_latency(api, victim, fast)
                assert latency < 1.0, f"the victim's callback left {latency:.2f} s after its terminal commit"
                await asyncio.sleep(1.5)  # a round of retries, claimed by both dispatchers
        # SQLite claims under its one write lock: the cap is exact. PostgreSQL claims concurrently: two dispatchers
        # claiming in the same instant may each fill the cap once (the documented bound: cap x dispatchers).
        bound = SHIPPED.callback_account_concurrency * (1 if db_url.startswith("sqlite") else 2)
        assert (most := await _most_in_flight(api, "attacker")) <= bound, most
