"""The console's channels page shows each Kling channel's resource packs from Kling's ``/account/costs`` (the fake
Kling server, on loopback): remaining / total per pack where the account allows the query, "not available" with the
reason where Kling refuses it or does not answer in time (the page waits a bounded time, for every channel at once);
never a credential; at most one call a minute per channel."""

from __future__ import annotations

import html
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from api.console_client import Console, open_console
from fakes.kling_server import FakeKling
from fakes.silent_tcp import SilentServer
from reelgate.config import Settings

PAID_KEY, LOCKED_KEY, SLOW_KEY = "paid-" + "p" * 27, "locked-" + "l" * 25, "slow-" + "s" * 27
DAY_MS = 86_400_000


def pack(name: str, total: float, remaining: float, status: str = "online") -> dict[str, object]:
    now = int(time.time() * 1000)
    return {"resource_pack_name": name, "resource_pack_id": f"id-{name}", "resource_pack_type": "decreasing_total",
            "total_quantity": total, "remaining_quantity": remaining, "purchase_time": now - DAY_MS,
            "effective_time": now - DAY_MS, "invalid_time": now + 30 * DAY_MS, "status": status}  # fmt: skip


@pytest.fixture(scope="module")
def kling() -> Iterator[FakeKling]:
    with FakeKling(api_keys={PAID_KEY, LOCKED_KEY}) as fake:
        yield fake


@pytest.fixture
async def console(settings: Settings, tmp_path: Path, kling: FakeKling) -> AsyncIterator[Console]:
    kling.reset()
    kling.set_resource_packs(PAID_KEY, [pack("video-pack", 1000, 612.5), pack("trial", 66, 0, "runOut")])
    kling.set_resource_packs(LOCKED_KEY, [pack("never-shown", 10, 10)])
    kling.refuse_costs(LOCKED_KEY, 1103)
    with SilentServer() as hung:  # accepts and never answers: a Kling that hangs
        channels = [{"name": "paid", "api_key": PAID_KEY, "base_url": kling.base_url},
                    {"name": "locked", "api_key": LOCKED_KEY, "base_url": kling.base_url},
                    {"name": "slow", "api_key": SLOW_KEY, "base_url": f"http://127.0.0.1:{hung.port}"}]  # fmt: skip
        config = tmp_path / "kling.json"
        config.write_text(json.dumps({"channels": channels}))
        config.chmod(0o600)
        async with open_console(settings.with_changes(kling_config=str(config))) as opened:
            await opened.sign_in()
            yield opened


def row(page: str, channel: str) -> str:
    start = page.index(f"kling:{channel}")
    return page[start : page.index("</tr>", start)]


async def test_packs_per_channel_refusal_and_timeout_said_bounded_and_cached(
    console: Console, kling: FakeKling
) -> None:
    started = time.perf_counter()
    answer = await console.client.get("/console/channels")
    took = time.perf_counter() - started
    assert answer.status_code == 200
    page = html.unescape(answer.text)

    paid = row(page, "paid")
    assert "video-pack: 612.5 / 1000" in paid and "trial: 0 / 66" in paid and "runOut" in paid
    locked = row(page, "locked")
    assert "not available: Kling answered code 1103: No access to the requested resource" in locked
    assert "never-shown" not in locked
    assert "not available: Kling did not answer within 2 s" in row(page, "slow")
    assert took < 3.5, took  # every channel asked at once, each wait bounded at 2 s
    for key in (PAID_KEY, LOCKED_KEY, SLOW_KEY):
        assert key not in answer.text
    asked = kling.requests("costs")
    assert len(asked) == 2 and all(r.query["start_time"] and r.query["end_time"] for r in asked)

    started = time.perf_counter()
    again = await console.client.get("/console/channels")
    assert time.perf_counter() - started < 0.5  # the answers (and the timeout) are reused for a minute
    assert len(kling.requests("costs")) == 2
    assert "video-pack: 612.5 / 1000" in html.unescape(again.text)
