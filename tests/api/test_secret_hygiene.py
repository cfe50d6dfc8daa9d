"""API keys and webhook secrets never show up in logs, error bodies or metrics."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fakes.receiver import Receiver
from harness import Api, auth, b64_jpeg, image_body
from logs_capture import captured_text


async def test_no_secret_leaks_anywhere(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = await api.key(credits=2)
    acct = await api.rt.store.accounts.account_id("acme")
    assert acct is not None
    secret = await api.rt.store.accounts.webhook_secret(acct)
    bodies = []
    with Receiver([500, 200]) as hook:
        task = (await api.submit(key, {**image_body(b64_jpeg(1), b64_jpeg(2)), "callback_url": hook.url()})).json()
        await api.wait(key, task["id"])
        await asyncio.to_thread(hook.wait_for, 2)
    for path in ("/v1/tasks/nope", "/v1/nothing", f"/v1/tasks/{task['id']}/callbacks"):
        bodies.append((await api.client.get(path, headers=auth(key))).text)
    bodies.append((await api.client.get("/v1/tasks", headers={"Authorization": f"Bearer {key}x"})).text)
    bodies.append((await api.client.get("/metrics")).text)
    everything = captured_text(caplog) + "\n".join(bodies)
    for needle in (key, key[12:40], secret, secret.removeprefix("whsec_")[:20]):
        assert needle not in everything
