"""Receivers that answer badly: a head that trickles in, a body that trickles or never ends, an error page. Each
attempt ends by the deadline, and no more than a few KiB of any reply is read."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from fakes.receiver import ENDLESS, TRICKLE_BODY, TRICKLE_HEAD, Receiver
from harness import Api, auth, b64_jpeg, image_body, make_settings, open_api
from logs_capture import captured_text

DEADLINE = 0.5
SLACK = 0.3  # scheduling on a shared 2-core machine


async def _settled(api: Api, key: str, task_id: str, attempts: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        log: dict[str, Any] = (await api.client.get(f"/v1/tasks/{task_id}/callbacks", headers=auth(key))).json()
        if len(log["data"]) >= attempts and log["delivery"]["status"] != "pending":
            return log
        await asyncio.sleep(0.05)
    raise AssertionError(f"the delivery of {task_id} did not settle after {attempts} attempts")


async def _deliver(tmp_path: Path, db_url: str, hook: Receiver, attempts: int) -> dict[str, Any]:
    async with open_api(make_settings(tmp_path, db_url, callback_timeout=DEADLINE)) as api:
        key = await api.key()
        body = {**image_body(b64_jpeg(1), b64_jpeg(2)), "callback_url": hook.url()}
        return await _settled(api, key, (await api.submit(key, body)).json()["id"], attempts)


async def test_a_head_that_trickles_in_is_cut_at_the_deadline(tmp_path: Path, db_url: str) -> None:
    with Receiver([TRICKLE_HEAD, 200]) as hook:
        log = await _deliver(tmp_path, db_url, hook, 2)
    first, second = log["data"]
    assert first["error"] == f"timeout after {DEADLINE:g} s" and first["latency_ms"] < (DEADLINE + SLACK) * 1000
    assert second["status_code"] == 200 and log["delivery"]["status"] == "delivered"


async def test_a_2xx_whose_body_trickles_is_delivered_by_the_deadline(tmp_path: Path, db_url: str) -> None:
    with Receiver([TRICKLE_BODY]) as hook:
        log = await _deliver(tmp_path, db_url, hook, 1)
    only = log["data"][0]
    # The receiver answered 2xx in time; what its body does afterwards changes nothing, and costs at most the deadline.
    assert only["status_code"] == 200 and only["error"] is None and log["delivery"]["status"] == "delivered", only
    assert only["latency_ms"] < (DEADLINE + SLACK) * 1000


async def test_a_2xx_with_an_endless_body_is_delivered_at_once(tmp_path: Path, db_url: str) -> None:
    with Receiver([ENDLESS]) as hook:
        log = await _deliver(tmp_path, db_url, hook, 1)
        deadline = time.monotonic() + 5
        while not hook.streamed and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the receiver learns of the hang-up on its next writes
    only = log["data"][0]
    assert only["status_code"] == 200 and log["delivery"]["status"] == "delivered", only
    assert only["latency_ms"] < DEADLINE * 1000
    # Socket buffers take a few MB before the hang-up shows; reading on would have taken hundreds.
    assert hook.streamed and hook.streamed[0] < 32 * 1024 * 1024, hook.streamed


async def test_an_error_page_is_excerpted_for_the_operator(tmp_path: Path, db_url: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="reelgate.dispatcher")
    with Receiver([500, 500, 500, 500]) as hook:
        log = await _deliver(tmp_path, db_url, hook, 4)
    assert [a["error"] for a in log["data"]] == ["HTTP 500"] * 4
    assert '"error":"HTTP 500","detail":"ok"' in captured_text(caplog)  # the receiver's own words, for the operator
