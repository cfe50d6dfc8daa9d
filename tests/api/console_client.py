"""The app in-process with no worker or dispatcher (tasks stay where a test puts them), an operator, and a signed-in
httpx client that reads forms as a browser would: the console tests' shared parts."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from reelgate.config import Settings
from reelgate.console_ops import Admins
from reelgate.runtime import Runtime, build_app

PASSWORD = "correct horse battery staple"


@dataclass
class Console:
    client: httpx.AsyncClient
    rt: Runtime

    async def sign_in(self, username: str = "ops", password: str = PASSWORD, **headers: str) -> httpx.Response:
        page = await self.client.get("/console/sign-in")
        return await self.client.post(
            "/console/sign-in",
            headers=headers,
            data={"token": field(page.text, "token"), "username": username, "password": password, "next": "/console/"},
        )

    async def csrf(self) -> str:
        """The session's CSRF token, as every signed-in page carries it."""
        page = await self.client.get("/console/audit")
        assert page.status_code == 200, page.status_code
        return field(page.text, "csrf")

    async def post(self, path: str, **data: str) -> httpx.Response:
        return await self.client.post(path, data={"csrf": await self.csrf(), **data})


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no {name} field in the page"
    return found.group(1)


@contextlib.asynccontextmanager
async def open_console(settings: Settings) -> AsyncIterator[Console]:
    app, rt = build_app(settings, worker=False, dispatcher=False)
    ctx = app.state.ctx
    for start in ctx.on_startup:
        await start()
    try:
        await Admins(rt.store).create("ops", PASSWORD)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            yield Console(client, rt)
    finally:
        for stop in ctx.on_shutdown:
            await stop()
