"""A real server on loopback for the webhook tests of the client and the CLI, one per session: the whole service
(API, worker, dispatcher) behind uvicorn (``served.serve``), on an event loop in a thread of its own so blocking
clients, async clients and ``reelgate`` processes all reach it alike. Its callbacks are retried after 0.05 s (three
times, as shipped), so a delivery to a failing receiver is dead within a second.

A delivery that dies on the shared ``reelgate serve`` of ``client.live`` takes the shipped 1 + 2 + 4 s, and a second
``reelgate serve`` costs seconds of interpreter starts; this one starts in a fraction of one (its first Base64 submit
starts the media pool's processes, a second or more, once). The API tests run one per database engine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from client.live import jpeg
from harness import make_settings
from reelgate.store.migrate import upgrade
from served import serve

# One account per test module that resends: resends are limited to 5 a minute per account.
WEBHOOK_ACCOUNTS = {"hooks-sync": 10, "hooks-async": 10, "hooks-cli": 10, "hooks-other": 10}
FAST_RETRIES = (0.05, 0.05, 0.05)
_SESSION = pytest.StashKey["HookServer"]()


@dataclass
class HookServer:
    base_url: str
    keys: dict[str, str]  # account name -> API key


@contextlib.contextmanager
def threaded_server(data_dir: Path, db_url: str, accounts: dict[str, int]) -> Iterator[HookServer]:
    """The service on ``db_url`` (migrated) behind uvicorn on loopback, in a thread, with a key for each account
    (name -> credits)."""
    settings = make_settings(data_dir, db_url, callback_retry_delays=FAST_RETRIES, public_base_url="")

    async def start() -> tuple[HookServer, contextlib.AsyncExitStack]:
        stack = contextlib.AsyncExitStack()
        served = await stack.enter_async_context(serve(settings))
        keys = {name: await served.key(name, credits) for name, credits in accounts.items()}
        return HookServer(served.base, keys), stack

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="webhook-test-server", daemon=True)
    thread.start()
    try:
        server, stack = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(60)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def webhook_session_server(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> HookServer:
    if _SESSION not in config.stash:
        stack = contextlib.ExitStack()
        config.add_cleanup(stack.close)
        folder = tmp_path_factory.mktemp("reelgate-webhooks")
        url = f"sqlite:///{folder / 'reelgate.db'}"
        upgrade(url)
        config.stash[_SESSION] = stack.enter_context(threaded_server(folder, url, WEBHOOK_ACCOUNTS))
    return config.stash[_SESSION]


def element_body(callback_url: str | None = None, scene: int = 40) -> dict[str, object]:
    """A small element request (Base64 pictures), with a callback_url when given."""

    def data_uri(n: int) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(jpeg(n, 320, 400)).decode()

    body: dict[str, object] = {"model": "kling-custom-element", "model_params": {
        "element_name": "Hook", "element_description": "a webhook test", "reference_type": "image_refer",
        "element_image_list": {"frontal_image": data_uri(scene), "refer_images": [{"image_url": data_uri(scene + 1)}]},
    }}  # fmt: skip
    if callback_url is not None:
        body["callback_url"] = callback_url
    return body


def dead_delivery(server: HookServer, key: str, callback_url: str, timeout: float = 20) -> str:
    """Submit a task called back at ``callback_url`` (which must fail every attempt) and wait until its delivery is
    dead; the task's id."""
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        created = http.post("/v1/videos/generations", json=element_body(callback_url))
        assert created.status_code == 200, created.text
        task_id: str = created.json()["id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            delivery = http.get(f"/v1/tasks/{task_id}/callbacks").json()["delivery"]
            if delivery is not None and delivery["status"] == "dead":
                return task_id
            time.sleep(0.05)
    raise AssertionError(f"the delivery of {task_id} did not die within {timeout} s")
