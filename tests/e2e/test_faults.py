"""Faults: the database going away for a few seconds, and a full disk while storing media."""

from __future__ import annotations

import asyncio
import errno
import time
from pathlib import Path

import pytest

from dbs import truncate
from fakes import mediagen
from fakes.media_server import MediaServer
from fakes.tcp_proxy import TcpProxy
from harness import Api, auth, b64_jpeg, image_body, make_settings, open_api
from reelgate.storage import DirectoryStorage


async def test_database_outage_answers_503_then_recovers_by_itself(tmp_path: Path, pg_session_url: str) -> None:
    await truncate(pg_session_url)
    port = int(pg_session_url.split(":")[-1].split("/")[0])
    with TcpProxy(port) as proxy:
        url = pg_session_url.replace(f":{port}/", f":{proxy.port}/")
        async with open_api(make_settings(tmp_path, url)) as api:
            key = await api.key(credits=3)
            first = (await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).json()["id"]
            await api.wait(key, first)
            proxy.cut(2.0)
            await asyncio.sleep(1.1)  # past the key cache TTL: requests now need the database
            down = await api.client.get(f"/v1/tasks/{first}", headers=auth(key))
            assert down.status_code == 503 and down.json()["error"]["type"] == "service_unavailable_error"
            assert down.headers["Retry-After"] == "1"
            assert (await api.client.get("/readyz")).status_code == 503
            refused = await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))
            assert refused.status_code == 503
            deadline = time.monotonic() + 15
            while (await api.client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "the API did not recover after the database came back"
                await asyncio.sleep(0.2)
            second = (await api.submit(key, image_body(b64_jpeg(3), b64_jpeg(4)))).json()["id"]
            assert (await api.wait(key, second))["status"] == "completed"  # workers resumed by themselves
            acct = await api.rt.store.accounts.account_id("acme")
            assert acct is not None
            b = (await api.rt.store.accounts.view(acct)).balance
            assert (b.available, b.reserved, b.captured) == (1000, 0, 2000)  # the refused submit cost nothing


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(self: DirectoryStorage, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    # The one stand-in of the suite: a real full disk cannot be had in a test sandbox.
    monkeypatch.setattr(DirectoryStorage, "_commit", no_space)


async def test_full_disk_fails_the_task_cleanly_with_a_refund(api: Api, full_disk: None) -> None:
    key = await api.key(credits=1)
    with MediaServer() as media:
        media.serve("/f.jpg", mediagen.jpeg(768, 1024, scene=1), "image/jpeg")
        media.serve("/s.jpg", mediagen.jpeg(768, 1024, scene=2), "image/jpeg")
        task = await api.wait(
            key, (await api.submit(key, image_body(media.url("/f.jpg"), media.url("/s.jpg")))).json()["id"]
        )
    assert task["status"] == "failed" and task["error"]["code"] == "service_error"
    assert "storage full" in task["error"]["message"] and task["usage"]["credits_charged"] == 0
    upload = await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))
    assert upload.status_code == 503 and upload.json()["error"]["code"] == "storage_unavailable"
    acct = await api.rt.store.accounts.account_id("acme")
    assert acct is not None
    assert (await api.rt.store.accounts.view(acct)).balance.available == 1000
