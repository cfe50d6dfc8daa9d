"""kill -9 of a real ``reelgate serve`` mid-work loses nothing: every task ends, is settled once, no credit leaks."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fakes import mediagen
from fakes.media_server import MediaServer
from fakes.receiver import Receiver
from procs import Proc, create_key, free_port, reelgate_env, serve
from reelgate.store.sql import Store
from settled import ledger_is_exact, wait_terminal

FRONT = mediagen.jpeg(768, 1024, scene=1)
SIDE = mediagen.jpeg(768, 1024, scene=2)


@pytest.fixture
def slow_media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        server.serve("/front.jpg", FRONT, "image/jpeg")

        def slow(handler: object) -> None:
            if not handler.wait(0.6):  # type: ignore[attr-defined]
                handler.send_bytes(200, SIDE, "image/jpeg")  # type: ignore[attr-defined]

        server.route("/side.jpg", slow)
        yield server


def _body(media: MediaServer, callback: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"model": "kling-custom-element", "model_params": {
        "element_name": "crash", "element_description": "survives kill -9", "reference_type": "image_refer",
        "element_image_list": {"frontal_image": media.url("/front.jpg"),
                               "refer_images": [{"image_url": media.url("/side.jpg")}]}}}  # fmt: skip
    if callback:
        body["callback_url"] = callback
    return body


def test_kill_9_mid_task_then_restart(tmp_path: Path, db_url: str, slow_media: MediaServer) -> None:
    env = reelgate_env(tmp_path / "data", db_url, REELGATE_LEASE_SECONDS="1.5", REELGATE_WORKER_CONCURRENCY="4")
    key = create_key(env, credits=30)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(env, port, tmp_path / "serve.log")
    try:
        headers = {"Authorization": f"Bearer {key}"}
        ids = [httpx.post(f"{base}/v1/videos/generations", json=_body(slow_media), headers=headers).json()["id"]
               for _ in range(12)]  # fmt: skip
        time.sleep(0.3)  # some tasks are now mid-fetch, holding leases
        server.kill()
        server = serve(env, port, tmp_path / "serve.log")
        tasks = wait_terminal(base, key, ids)
    finally:
        server.kill()
    assert all(t["status"] == "completed" for t in tasks), [t.get("error") for t in tasks]
    assert len({t["result_data"]["element_id"] for t in tasks}) == len(ids)  # type: ignore[index]
    asyncio.run(ledger_is_exact(db_url, ids))


def test_outbox_survives_kill_between_commit_and_send(tmp_path: Path, db_url: str) -> None:
    env = reelgate_env(tmp_path / "data", db_url)
    key = create_key(env, credits=5)
    port = free_port()
    front = "data:image/jpeg;base64," + base64.b64encode(FRONT).decode()
    side = base64.b64encode(SIDE).decode()
    body = {"model": "kling-custom-element", "model_params": {
        "element_name": "outbox", "element_description": "x", "reference_type": "image_refer",
        "element_image_list": {"frontal_image": front, "refer_images": [{"image_url": side}]}}}  # fmt: skip
    with Receiver() as hook:
        # The API process runs no tasks; a worker process that does not dispatch finishes them, so every
        # terminal commit leaves a pending delivery behind when it is killed.
        api = serve(env, port, tmp_path / "serve.log", "--no-tasks")
        worker = Proc(env, "worker", "--no-dispatch", log=tmp_path / "worker.log")
        try:
            headers = {"Authorization": f"Bearer {key}"}
            task_id = httpx.post(f"http://127.0.0.1:{port}/v1/videos/generations", headers=headers,
                                 json={**body, "callback_url": hook.url()}).json()["id"]  # fmt: skip
            wait_terminal(f"http://127.0.0.1:{port}", key, [task_id])
            worker.kill()
            assert hook.received == []
            webhook_id = asyncio.run(_delivery_id(env["REELGATE_DATABASE_URL"], task_id))
            dispatcher = Proc(env, "dispatcher", log=tmp_path / "dispatcher.log")
            try:
                got = hook.wait_for(1, timeout=20)
            finally:
                dispatcher.kill()
        finally:
            worker.kill()
            api.kill()
    assert got[0].headers["webhook-id"] == webhook_id


async def _delivery_id(db_url: str, task_id: str) -> str:
    store = await Store.open(db_url, pool_size=1)
    try:
        delivery, attempts = await store.deliveries.for_task(task_id)
        assert delivery is not None and delivery["status"] == "pending" and attempts == []
        return str(delivery["id"])
    finally:
        await store.close()
