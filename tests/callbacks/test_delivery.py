"""Callbacks end to end: signed, body identical to GET, retried at the shipped 1/2/4 s, HTTPS with a test CA, SSRF at
send."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import ssl
import time
from pathlib import Path

import pytest
import trustme

from fakes.receiver import Receiver
from harness import Api, auth, b64_jpeg, image_body, make_settings, open_api
from reelgate.config import Settings
from reelgate.webhooks import WebhookVerificationError, verify

FRONT, SIDE = b64_jpeg(1), b64_jpeg(2)
CONTRACT_GAPS = (1.0, 2.0, 4.0)  # contract section 6: attempts at about t, t+1, t+3, t+7 s
SPEEDUP = 4


def independent_check(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks scheme written from its spec, sharing no code with reelgate.callbacks."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(sig.split(",", 1) == ["v1", expected] for sig in headers["webhook-signature"].split(" "))


async def _secret(api: Api) -> str:
    acct = await api.rt.store.accounts.account_id("acme")
    assert acct is not None
    return await api.rt.store.accounts.webhook_secret(acct)


async def _log(api: Api, key: str, task_id: str, attempts: int, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = (await api.client.get(f"/v1/tasks/{task_id}/callbacks", headers=auth(key))).json()
        if len(log["data"]) >= attempts and log["delivery"]["status"] != "pending":
            return log  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"delivery log of {task_id} did not reach {attempts} attempts")


async def test_completed_task_is_called_back_signed_with_the_query_body(api: Api) -> None:
    key = await api.key()
    with Receiver() as hook:
        task_id = (await api.submit(key, {**image_body(FRONT, SIDE), "callback_url": hook.url()})).json()["id"]
        got = (await asyncio.to_thread(hook.wait_for, 1))[0]
        queried = (await api.client.get(f"/v1/tasks/{task_id}", headers=auth(key))).content
        assert json.loads(got.body) == json.loads(queried) and json.loads(got.body)["status"] == "completed"
        assert got.headers["content-type"] == "application/json"
        secret = await _secret(api)
        assert independent_check(secret, got.headers, got.body)
        verify(got.body, got.headers, secret)
        with pytest.raises(WebhookVerificationError):
            verify(got.body + b" ", got.headers, secret)
        log = await _log(api, key, task_id, 1)
        assert log["delivery"]["id"] == got.headers["webhook-id"]  # type: ignore[index]
        assert log["data"][0]["status_code"] == 200  # type: ignore[index]


async def test_retries_follow_the_shipped_1_2_4_seconds_and_keep_the_webhook_id(tmp_path: Path, db_url: str) -> None:
    # The shipped defaults, run 4x faster: a default of 1/2/8 s would show as gaps of 0.25/0.5/2 s here.
    delays = tuple(d / SPEEDUP for d in Settings().callback_retry_delays)
    async with open_api(make_settings(tmp_path, db_url, callback_retry_delays=delays)) as api:
        key = await api.key()
        with Receiver([500, 503, 302, 200]) as hook:
            task_id = (await api.submit(key, {**image_body(FRONT, SIDE), "callback_url": hook.url()})).json()["id"]
            got = await asyncio.to_thread(hook.wait_for, 4, 15)
            gaps = [(b.at - a.at) * SPEEDUP for a, b in zip(got, got[1:], strict=False)]
            assert all(abs(g - want) < 0.4 for g, want in zip(gaps, CONTRACT_GAPS, strict=True)), gaps
            assert len({r.headers["webhook-id"] for r in got}) == 1
            log = await _log(api, key, task_id, 4)
            assert [a["status_code"] for a in log["data"]] == [500, 503, 302, 200]  # type: ignore[index]
            assert log["delivery"]["status"] == "delivered"  # type: ignore[index]


async def test_after_four_failures_the_delivery_is_dead(api: Api) -> None:
    key = await api.key()
    with Receiver([500, 500, 500, 500, 200]) as hook:
        task_id = (await api.submit(key, {**image_body(FRONT, SIDE), "callback_url": hook.url()})).json()["id"]
        log = await _log(api, key, task_id, 4)
        assert log["delivery"]["status"] == "dead" and len(hook.received) == 4  # type: ignore[index]
        assert [a["error"] for a in log["data"]] == ["HTTP 500"] * 4  # type: ignore[index]
        # As a tenant reads it: ISO 8601 UTC times, latency to 0.1 ms, no next attempt where none will come.
        delivery, attempts = log["delivery"], log["data"]
        assert "next_attempt" not in delivery and "next_attempt" not in attempts[-1]  # type: ignore[operator,index]
        assert all("next_attempt" in a for a in attempts[:-1])  # type: ignore[index]
        for row in [delivery, *attempts]:  # type: ignore[list-item]
            for name in ("created", "finished_at", "started_at", "next_attempt"):
                if name in row:
                    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row[name]), (name, row[name])
        assert all(round(a["latency_ms"], 1) == a["latency_ms"] for a in attempts)  # type: ignore[index,union-attr]


async def test_a_slow_receiver_times_out_and_is_retried(tmp_path: Path, db_url: str) -> None:
    async with open_api(make_settings(tmp_path, db_url, callback_timeout=0.5)) as api:
        key = await api.key()
        with Receiver([2.0, 200]) as hook:
            task_id = (await api.submit(key, {**image_body(FRONT, SIDE), "callback_url": hook.url()})).json()["id"]
            log = await _log(api, key, task_id, 2)
            assert "timeout" in log["data"][0]["error"] and log["data"][1]["status_code"] == 200  # type: ignore[index]


async def test_cancel_fires_the_callback(api: Api) -> None:
    key = await api.key()
    api.rt.worker.concurrency = 0  # type: ignore[union-attr]  # keep the task pending so it can be cancelled
    with Receiver() as hook:
        task_id = (await api.submit(key, {**image_body(FRONT, SIDE), "callback_url": hook.url()})).json()["id"]
        await api.client.post(f"/v1/tasks/{task_id}/cancel", headers=auth(key))
        body = json.loads((await asyncio.to_thread(hook.wait_for, 1))[0].body)
        assert body["status"] == "failed" and body["error"]["code"] == "request_cancelled"


async def test_https_receiver_with_a_test_ca(tmp_path: Path, db_url: str) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with open_api(make_settings(tmp_path, db_url, callback_ca_bundle=str(ca_file))) as api:
        key = await api.key()
        with Receiver(ssl_context=server_ctx) as hook:
            url = hook.url(host="localhost")
            assert url.startswith("https://")
            task_id = (await api.submit(key, {**image_body(FRONT, SIDE), "callback_url": url})).json()["id"]
            got = await asyncio.to_thread(hook.wait_for, 1)
            assert json.loads(got[0].body)["id"] == task_id


async def test_untrusted_certificate_is_a_failure(api: Api, tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    key = await api.key()
    with Receiver([200] * 5, ssl_context=server_ctx) as hook:
        task_id = (
            await api.submit(key, {**image_body(FRONT, SIDE), "callback_url": hook.url(host="localhost")})
        ).json()["id"]
        log = await _log(api, key, task_id, 4)
        assert log["delivery"]["status"] == "dead"  # type: ignore[index]
        assert all("SSL" in a["error"] or "CERTIFICATE" in a["error"].upper() for a in log["data"])  # type: ignore[index,union-attr]


async def test_a_name_resolving_to_a_private_address_is_refused_at_send(tmp_path: Path, db_url: str) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "hooks.example.com" else []

    settings = make_settings(tmp_path, db_url, allow_private_networks=False, callback_retry_delays=(0.1, 0.1, 0.1))
    async with open_api(settings, resolver) as api:
        key = await api.key()
        with Receiver() as hook:
            port = hook.url().rsplit(":", 1)[1].split("/")[0]
            url = f"https://hooks.example.com:{port}/hook"
            submitted = await api.submit(key, {**image_body(FRONT, SIDE), "callback_url": url})
            assert submitted.status_code == 200  # a public-looking name passes the submit-time rules
            log = await _log(api, key, submitted.json()["id"], 4)
            assert log["delivery"]["status"] == "dead" and hook.received == []  # type: ignore[index]
            assert all(a["error"].startswith("refused") for a in log["data"])  # type: ignore[index,union-attr]
