"""The console's channels, on both engines, with the Kling provider configured (two channels; Kling itself is never
called): places in flight against each channel's cap from the upstream slots every worker shares, tasks waiting in
line, the error codes of the last day's failures on each, and a channel this process took out of rotation, with
the reason and until when."""

from __future__ import annotations

import html
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from api.console_client import Console, open_console
from reelgate.config import Settings
from store.factories import account, done, new_task


@pytest.fixture
async def console(settings: Settings, tmp_path: Path) -> AsyncIterator[Console]:
    config = tmp_path / "kling.json"
    channel = {"base_url": "http://127.0.0.1:9", "api_key": "k" * 32}
    config.write_text(json.dumps({"channels": [{"name": "sg-main", "concurrency": 4, **channel},
                                               {"name": "backup", "weight": 2, **channel}]}))  # fmt: skip
    config.chmod(0o600)
    async with open_console(settings.with_changes(kling_config=str(config))) as opened:
        await opened.sign_in()
        yield opened


async def test_channels_show_places_errors_and_rotation(console: Console) -> None:
    store = console.rt.store
    acme = await account(store, "acme")
    running, _ = await store.tasks.create(replace(new_task(acme), provider="kling"), None)
    assert await store.upstream_slots.acquire("kling:sg-main", running.id, cap=4)
    failing, _ = await store.tasks.create(replace(new_task(acme), provider="kling"), None)
    claims = await store.tasks.claim("worker-a", time.time(), 30, 2)
    assert {c.id for c in claims} == {running.id, failing.id}
    assert await store.tasks.save_state(failing.id, "worker-a", {"phase": "polling", "channel": "sg-main"}, None)
    assert await store.tasks.finish(replace(done(failing.id, "worker-a", ok=False), error_code="quota_exceeded"))
    kling = console.rt.providers["kling"]
    pool = kling.pool  # type: ignore[attr-defined]  # the vendor's own pool: taken out as a 1102 would take it
    pool.mark_down(pool.get("backup"), 1102)

    page = html.unescape((await console.client.get("/console/channels")).text)
    main_row = page[page.index("kling:sg-main") : page.index("</tr>", page.index("kling:sg-main"))]
    assert "in rotation" in main_row and "1 / 4" in main_row and "quota_exceeded</a> 1" in main_row
    backup_row = page[page.index("kling:backup") : page.index("</tr>", page.index("kling:backup"))]
    assert "out of rotation" in backup_row and "Kling answered code 1102" in backup_row and "0 / 8" in backup_row
    assert "weight 2" in backup_row
    overview = html.unescape((await console.client.get("/console/")).text)
    assert "kling:backup" in overview and "out of rotation" in overview
