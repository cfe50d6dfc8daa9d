"""The API in-process for tests: the real app, worker and dispatcher on a real database, driven through httpx."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from fakes import mediagen
from reelgate.auth import hash_key, key_prefix, new_api_key
from reelgate.callbacks import new_secret
from reelgate.config import Settings
from reelgate.netguard import Resolver
from reelgate.runtime import Runtime, build_app


async def make_key(rt: Runtime, account: str, credits: int = 5, group: str | None = None) -> str:
    """A new API key for ``account`` (created if new), granted ``credits`` credits first."""
    accounts = rt.store.accounts
    acct = await accounts.ensure_account(account, group, new_secret())
    if credits:
        await accounts.grant(acct, credits * 1000, "test")
    key = new_api_key()
    await accounts.add_key(acct, hash_key(key), key_prefix(key), "")
    return key


@dataclass
class Api:
    client: httpx.AsyncClient
    rt: Runtime
    app: Starlette

    async def key(self, account: str = "acme", credits: int = 5, group: str | None = None) -> str:
        return await make_key(self.rt, account, credits, group)

    async def submit(self, key: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.client.post("/v1/videos/generations", json=body, headers={**auth(key), **headers})

    async def wait(self, key: str, task_id: str, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task: dict[str, Any] = (await self.client.get(f"/v1/tasks/{task_id}", headers=auth(key))).json()
            if task["status"] in ("completed", "failed"):
                return task
            await asyncio.sleep(0.02)
        raise AssertionError(f"task {task_id} did not finish in {timeout} s")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def b64_jpeg(scene: int, width: int = 768, height: int = 1024) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(mediagen.jpeg(width, height, scene=scene)).decode()


def image_body(frontal: str, *refer: str, **params: Any) -> dict[str, Any]:
    model_params: dict[str, Any] = {
        "element_name": "My Character",
        "element_description": "A young male character with short hair, wearing a white T-shirt",
        "reference_type": "image_refer",
        "element_image_list": {"frontal_image": frontal, "refer_images": [{"image_url": r} for r in refer]},
    }
    model_params.update(params)
    return {"model": "kling-custom-element", "model_params": model_params}


def make_settings(tmp_path: Path, db_url: str, **changes: Any) -> Settings:
    base = Settings(data_dir=tmp_path, database_url=db_url, allow_private_networks=True,
                    public_base_url="http://testserver", worker_poll_interval=0.05, lease_seconds=5,
                    callback_retry_delays=(0.2, 0.4, 0.8), max_body_bytes=2 * 1024 * 1024)  # fmt: skip
    return base.with_changes(**changes)


@contextlib.asynccontextmanager
async def open_api(settings: Settings, resolver: Resolver | None = None) -> AsyncIterator[Api]:
    app, rt = build_app(settings, resolver=resolver)
    ctx = app.state.ctx
    for start in ctx.on_startup:
        await start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            yield Api(client, rt, app)
    finally:
        for stop in ctx.on_shutdown:
            await stop()
