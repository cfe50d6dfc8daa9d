"""The Kling provider harness: the real fake Kling server, a real runtime (worker + store) and a funded account."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from fakes.kling_server import FakeKling
from reelgate.auth import hash_key, key_prefix, new_api_key
from reelgate.callbacks import new_secret
from reelgate.config import Settings
from reelgate.domain import TaskRecord
from reelgate.runtime import Runtime, build_app, build_runtime
from reelgate.service import Submission
from reelgate.store.accounts import KeyOwner

AK = "ak-kling-test-0123456789"
SK = "sk-kling-test-SECRET-0123456789abcdef"
AK_B = "ak-kling-test-bbbbbbbbbb"
SK_B = "sk-kling-test-SECRET-bbbbbbbbbbbbbbbbbb"
FAST = {
    "poll_initial": 0.05,
    "poll_max": 0.2,
    "retry_initial": 0.05,
    "retry_max": 0.2,
    "busy_delay": 0.05,
    "create_settle": 1.5,
    "request_timeout": 5,
}
PRICE = 1000  # millicredits: 1 credit for the default group


def channel(name: str, fake: FakeKling, *, ak: str = AK, sk: str = SK, **extra: Any) -> dict[str, Any]:
    return {"name": name, "base_url": fake.base_url, "access_key": ak, "secret_key": sk, **extra}


def write_config(path: Path, channels: list[dict[str, Any]], **options: Any) -> str:
    path.write_text(json.dumps({"channels": channels, **FAST, **options}))
    path.chmod(0o600)
    return str(path)


def params(images: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "element_name": "Red fox",
        "element_description": "A red fox plush toy",
        "reference_type": "image_refer",
        "element_image_list": {"frontal_image": images[0], "refer_images": [{"image_url": images[1]}]},
        "tag_list": [{"tag_id": "o_103"}],
        **extra,
    }


@dataclass
class Gate:
    """One running runtime and a funded account that submits through the real service."""

    rt: Runtime
    owner: KeyOwner

    async def submit(self, model_params: dict[str, Any]) -> str:
        body = {"model": "kling-custom-element", "model_params": model_params}
        return (await self.rt.service.submit(Submission(body, self.owner))).id

    async def wait(self, task_id: str, timeout: float = 10.0) -> TaskRecord:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = await self.rt.store.tasks.get(task_id)
            if task is not None and task.status in ("completed", "failed"):
                return task
            await asyncio.sleep(0.02)
        raise AssertionError(f"task {task_id} did not finish within {timeout} s")

    async def ledger(self) -> dict[str, int]:
        return await self.rt.store.accounts.ledger_sums(self.owner.account_id)


def settings_for(tmp_path: Path, db_url: str, config: str, **changes: Any) -> Settings:
    base = Settings(data_dir=tmp_path, database_url=db_url, allow_private_networks=True,
                    providers={"kling-custom-element": "kling"}, kling_config=config, worker_poll_interval=0.05,
                    lease_seconds=2)  # fmt: skip
    return base.with_changes(**changes)


async def _owner(rt: Runtime) -> KeyOwner:
    account = await rt.store.accounts.ensure_account("acme", None, new_secret())
    if not await rt.store.accounts.ledger_sums(account):
        await rt.store.accounts.grant(account, 50 * PRICE, "test")
    key = new_api_key()
    key_id = await rt.store.accounts.add_key(account, hash_key(key), key_prefix(key), "test")
    return KeyOwner(key_id, account, "default", False, None, None, None)


@contextlib.asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[Gate]:
    """A started runtime (worker, no dispatcher); closing it abandons running tasks like a stopped process."""
    rt = build_runtime(settings, worker=True, dispatcher=False)
    await rt.start()
    try:
        yield Gate(rt, await _owner(rt))
    finally:
        await rt.close()


async def until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def serve_app(settings: Settings, port: int, **parts: bool) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """The whole app behind a real uvicorn on 127.0.0.1:``port``, and a client for it."""
    app, rt = build_app(settings, **parts)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the server stopped while starting"
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, rt
    finally:
        server.should_exit = True
        await serving


async def api_key(rt: Runtime, credits: int = 10) -> dict[str, str]:
    """The Authorization header of a new key of a funded account."""
    account = await rt.store.accounts.ensure_account("tenant", None, new_secret())
    await rt.store.accounts.grant(account, credits * PRICE, "test")
    key = new_api_key()
    await rt.store.accounts.add_key(account, hash_key(key), key_prefix(key), "test")
    return {"Authorization": f"Bearer {key}"}
