"""The tenant's delivery log gives fixed, generic reasons; resolver errors and addresses go to the operator log."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from pathlib import Path

import pytest

from harness import Api, auth, b64_jpeg, image_body, make_settings, open_api
from logs_capture import captured_text
from procs import free_port
from reelgate.netguard import Resolver

HOST = "hooks.example.com"


async def _dead_log(api: Api, key: str, task_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        log: dict[str, object] = (await api.client.get(f"/v1/tasks/{task_id}/callbacks", headers=auth(key))).json()
        if log["delivery"] and log["delivery"]["status"] == "dead":  # type: ignore[index]
            return log
        await asyncio.sleep(0.05)
    raise AssertionError(f"the delivery of {task_id} did not end")


async def _reasons(
    tmp_path: Path, db_url: str, resolver: Resolver, port: int, *, private: bool
) -> tuple[list[str], str]:
    """Each attempt's reason as the tenant reads it, and the tenant's whole log as text (its URL left out)."""
    settings = make_settings(tmp_path, db_url, allow_private_networks=private, callback_retry_delays=(0.05, 0.05))
    async with open_api(settings, resolver) as api:
        key = await api.key()
        body = {**image_body(b64_jpeg(1), b64_jpeg(2)), "callback_url": f"https://{HOST}:{port}/hook"}
        log = await _dead_log(api, key, (await api.submit(key, body)).json()["id"])
    reasons = [str(a["error"]) for a in log["data"]]  # type: ignore[attr-defined]
    log.pop("callback_url")
    log["delivery"].pop("url")  # type: ignore[attr-defined]
    return reasons, json.dumps(log)


async def test_a_private_address_is_named_to_the_operator_only(tmp_path: Path, db_url: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="reelgate.dispatcher")

    async def resolver(host: str, port: int) -> list[str]:
        return ["203.0.114.9", "10.20.30.40"]  # one public, one private answer: the whole name is refused

    reasons, text = await _reasons(tmp_path, db_url, resolver, 443, private=False)
    assert reasons == ["refused: the host resolves to a non-public address"] * 3
    assert "10.20.30.40" not in text and "10.20.30.40" in captured_text(caplog)


async def test_a_resolver_failure_is_named_to_the_operator_only(tmp_path: Path, db_url: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="reelgate.dispatcher")

    async def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (resolver 10.0.0.53)")

    reasons, text = await _reasons(tmp_path, db_url, resolver, 443, private=False)
    assert reasons == ["could not resolve the host"] * 3
    assert "10.0.0.53" not in text and "Name or service" not in text
    assert "Name or service not known (resolver 10.0.0.53)" in captured_text(caplog)


async def test_a_name_with_no_address_cannot_be_resolved(tmp_path: Path, db_url: str) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return []

    reasons, _ = await _reasons(tmp_path, db_url, resolver, 443, private=False)
    assert reasons == ["could not resolve the host"] * 3


async def test_a_refused_connection_names_no_address(tmp_path: Path, db_url: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="reelgate.dispatcher")

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # allowed here (development switch on), but nothing listens on the port

    reasons, text = await _reasons(tmp_path, db_url, resolver, free_port(), private=True)
    assert reasons == ["could not connect to the host"] * 3
    assert "127.0.0.1" not in text and "127.0.0.1" in captured_text(caplog)
