"""Kling's callback hook against a real server on SQLite and PostgreSQL: any path a stranger can send answers the
contract's 404, never 500, and a correctly signed hint still moves its task's poll forward."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fakes.kling_server import FakeKling
from kling.harness import channel, serve_app, settings_for, write_config
from procs import free_port
from reelgate.providers.kling.provider import KlingProvider
from reelgate.runtime import Runtime

TASK = "task-unified-1700000000-0abcdefg"
HOOK_PATH = "/hooks/kling"  # the URL Kling was given: it must keep working


@pytest.fixture
async def served(tmp_path: Path, db_url: str, fake: FakeKling) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    port = free_port()
    config = write_config(tmp_path / "kling.json", [channel("main", fake)],
                          callback_base_url=f"http://127.0.0.1:{port}", callback_secret="s" * 32)  # fmt: skip
    async with serve_app(settings_for(tmp_path, db_url, config), port, worker=False, dispatcher=False) as served:
        yield served


HOSTILE = [
    f"{TASK}/%C3%A9{'0' * 31}",  # a non-ASCII signature segment: hmac.compare_digest raised TypeError (500)
    f"{TASK}/%C3%A9",
    f"{TASK}/%F0%9F%98%80",
    f"{TASK}/%00",
    f"{TASK}/{'0' * 31}%00",
    f"%00/{'0' * 32}",
    f"task-unified-%C2%B2/{'0' * 32}",
    f"{'t' * 5000}/{'0' * 32}",
    f"{TASK}/{'é' * 5000}",
    f"{TASK}/{'0' * 32}",  # well formed, wrong signature
]


async def test_hostile_hook_paths_answer_the_contracts_404(served: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = served
    for tail in HOSTILE:
        response = await client.post(f"{HOOK_PATH}/{tail}", json={"task_status": "succeed"})
        assert response.status_code == 404, (tail[:80], response.text)
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("not_found_error", "route_not_found")


async def test_a_signed_hint_is_still_accepted(served: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, rt = served
    provider = rt.providers["kling"]
    assert isinstance(provider, KlingProvider)
    response = await client.post(provider.hook_path(TASK), json={})
    assert response.status_code == 200 and response.json() == {"ok": True}
    upper = provider.hook_path(TASK)[:-32] + provider.hook_path(TASK)[-32:].upper()
    assert (await client.post(upper, json={})).status_code == 404  # the signature is compared byte for byte
