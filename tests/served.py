"""The whole service (API, worker, dispatcher) behind a real uvicorn server on loopback, on the test's database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from harness import make_key
from procs import free_port
from reelgate.api.server import BoundedHttpToolsProtocol
from reelgate.config import Settings
from reelgate.runtime import Runtime, build_app


@dataclass
class Served:
    base: str
    rt: Runtime

    async def key(self, account: str, credits: int = 5, group: str | None = None) -> str:
        return await make_key(self.rt, account, credits, group)

    def client(self, key: str | None = None, timeout: float = 60, **headers: str) -> httpx.AsyncClient:
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=timeout)

    @property
    def assets_dir(self) -> Path:
        return self.rt.settings.assets_dir

    def stored_files(self) -> list[str]:
        """Every file in the asset directory, temporary ones included."""
        return sorted(p.name for p in self.assets_dir.iterdir()) if self.assets_dir.is_dir() else []

    async def asset_rows(self) -> dict[str, str]:
        rows = await self.rt.store.db.read(lambda c: c.all("SELECT name, task_id FROM assets"))
        return {str(r["name"]): str(r["task_id"]) for r in rows}

    async def wait(self, client: httpx.AsyncClient, task_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            task: dict[str, Any] = (await client.get(f"/v1/tasks/{task_id}")).json()
            if task["status"] in ("completed", "failed"):
                return task
            await asyncio.sleep(0.05)
        raise AssertionError(f"task {task_id} did not finish in {timeout} s")


@contextlib.asynccontextmanager
async def serve(settings: Settings, **uvicorn_config: Any) -> AsyncIterator[Served]:
    app, rt = build_app(settings)
    config = {"http": BoundedHttpToolsProtocol, "loop": "asyncio", "log_config": None, "access_log": False,
              "lifespan": "on", **uvicorn_config}  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), **config))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{server.config.port}", rt)
    finally:
        server.should_exit = True
        await task
