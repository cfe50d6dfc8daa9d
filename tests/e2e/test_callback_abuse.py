"""Hostile callback receivers against a real server: an endless reply body."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from fakes.receiver import ENDLESS, Receiver
from harness import auth, b64_jpeg, image_body
from procs import create_key, free_port, reelgate_env, serve

MB = 1024 * 1024


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
