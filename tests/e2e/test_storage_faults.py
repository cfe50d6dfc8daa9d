"""Object storage faults on real parts (moto's S3 server on loopback, issue 22):

- the bucket becomes unreachable while a task runs (a TCP proxy in front of it cuts every connection): the task is
  retried, then fails with the contract's ``service_unavailable`` and a refund; nothing half-written is visible or
  served, and once the bucket is back the sweep leaves neither object nor row;
- ``reelgate serve`` is killed (SIGKILL) in the middle of a multipart upload it is streaming into the bucket (a large
  file API upload): no object becomes visible, and the hourly sweep of a worker discards the unfinished upload.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from fakes import mediagen
from fakes.media_server import MediaServer
from fakes.tcp_proxy import TcpProxy
from harness import image_body, make_settings
from procs import Proc, free_port, reelgate_env, serve
from reelgate import service as service_module
from reelgate import worker as worker_module
from reelgate.auth import hash_key, key_prefix, new_api_key
from reelgate.callbacks import new_secret
from reelgate.storage import S3Storage
from reelgate.store.sql import Store
from served import Served
from served import serve as serve_in_process
from storage.s3_server import ACCESS_KEY, REGION, SECRET_KEY, MotoS3

BUCKET = "reelgate-faults"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    with MotoS3(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        server.make_bucket(BUCKET)
        yield server


def _bucket(server: MotoS3, prefix: str) -> tuple[list[str], list[str]]:
    """The objects and the unfinished multipart uploads under ``prefix``, as the bucket itself lists them."""
    s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY)  # fmt: skip
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])
    uploads = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{prefix}/").get("Uploads", [])
    return [o["Key"] for o in objects], [u["Key"] for u in uploads]


def _s3(endpoint: str, prefix: str) -> dict[str, object]:
    return {"storage_url": f"s3://{BUCKET}/{prefix}", "s3_endpoint_url": endpoint, "aws_region": REGION,
            "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}  # fmt: skip


@pytest.fixture
async def behind_a_proxy(
    tmp_path: Path, db_url: str, moto: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Served, TcpProxy, str]]:
    """The whole service (API, worker) whose bucket is reached through a proxy the test can cut. To keep it to
    seconds, a task is tried twice (the second try 2 s after the first) rather than 8 times over two minutes, and
    each bucket request once rather than thrice (the same S3 backend, its retry budget set as its constructor
    allows)."""
    monkeypatch.setattr(worker_module, "MAX_ATTEMPTS", 2)
    prefix = f"faults-{uuid.uuid4().hex[:8]}"
    with TcpProxy(moto.port) as proxy:
        settings = make_settings(tmp_path, db_url, **_s3(f"http://127.0.0.1:{proxy.port}", prefix))
        async with serve_in_process(settings) as served:
            assets = served.rt.service.assets  # the one AssetStore the API and the worker's providers share
            configured = assets.storage
            assert isinstance(configured, S3Storage)
            assets.storage = S3Storage(configured.location, attempts=1, connect_timeout=2, read_timeout=5)
            await configured.aclose()
            yield served, proxy, prefix


async def test_an_unreachable_bucket_fails_the_task_after_its_retries_with_a_refund(
    behind_a_proxy: tuple[Served, TcpProxy, str], moto: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    served, proxy, prefix = behind_a_proxy
    key = await served.key("acme", credits=5)
    acct = await served.rt.store.accounts.account_id("acme")
    assert acct is not None
    fetched = threading.Event()
    go_on = threading.Event()

    def front_when_told(handler: object) -> None:
        fetched.set()
        go_on.wait(10)  # the task is running: the bucket goes away before the image arrives
        handler.send_bytes(200, mediagen.jpeg(768, 1024, scene=31), "image/jpeg")  # type: ignore[attr-defined]

    with MediaServer() as media:
        media.route("/front.jpg", front_when_told)
        media.serve("/side.jpg", mediagen.jpeg(768, 1024, scene=32), "image/jpeg")
        async with served.client(key) as client:
            submitted = await client.post("/v1/videos/generations",
                                          json=image_body(media.url("/front.jpg"), media.url("/side.jpg")))  # fmt: skip
            assert submitted.status_code == 200, submitted.text
            assert await asyncio.to_thread(fetched.wait, 10)
            proxy.cut(3600)  # every connection to the bucket dropped, every new one refused
            go_on.set()
            task = await served.wait(client, submitted.json()["id"], timeout=60)
            assert task["status"] == "failed", task
            assert task["error"]["code"] == "service_unavailable"
            assert "object storage is unreachable" in task["error"]["message"]
            assert task["usage"]["credits_charged"] == 0
            assert [seen.path for seen in media.seen].count("/front.jpg") == 2  # tried, then tried again
            assert (await served.rt.store.accounts.view(acct)).balance.available == 5000  # refunded whole
            registered = list(await served.asset_rows())
            assert registered  # the rows were written before the objects, which never were
            assert _bucket(moto, prefix) == ([], [])  # nothing half-written in the bucket
            proxy.cut(0)  # the bucket is back
            for name in registered:
                answer = await client.get(f"/assets/{name}")
                assert answer.status_code == 404 and answer.json()["error"]["code"] == "asset_not_found"
    monkeypatch.setattr(service_module, "ASSET_GRACE", -1.0)  # as the hourly sweep does an hour later
    assert await served.rt.service.sweep_assets() == len(registered)
    assert await served.asset_rows() == {} and _bucket(moto, prefix) == ([], [])


async def _key(db_url: str) -> str:
    store = await Store.open(db_url, pool_size=1)
    try:
        acct = await store.accounts.ensure_account("acme", None, new_secret())
        key = new_api_key()
        await store.accounts.add_key(acct, hash_key(key), key_prefix(key), "")
        return key
    finally:
        await store.close()


def _start_upload(port: int, key: str, size: int, send: int) -> socket.socket:
    """A stream upload of a ``size``-byte PNG (a real header, then padding) of which ``send`` bytes are sent; the
    socket is returned open, the rest never comes."""
    boundary = "reelgate-fault-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode()  # fmt: skip
    tail = f"\r\n--{boundary}--\r\n".encode()
    picture = mediagen.png(640, 480, scene=33)
    body = head + picture + b"\0" * (size - len(picture)) + tail
    request = (f"POST /api/v1/files/upload/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Authorization: Bearer {key}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(request + body[:send])
    return conn


def _wait_for(what: str, check: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.05)


def test_a_multipart_upload_cut_by_kill_9_is_never_visible_and_the_sweep_discards_it(
    tmp_path: Path, moto: MotoS3
) -> None:
    prefix = f"killed-{uuid.uuid4().hex[:8]}"
    env = reelgate_env(tmp_path / "data", f"sqlite:///{tmp_path / 'reelgate.db'}",
                       REELGATE_STORAGE_URL=f"s3://{BUCKET}/{prefix}", REELGATE_S3_ENDPOINT_URL=moto.endpoint,
                       AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION=REGION,
                       REELGATE_IMAGE_MAX_BYTES=str(20 * MIB))  # fmt: skip
    port = free_port()
    api = serve(env, port, tmp_path / "serve.log", "--no-tasks")
    conn: socket.socket | None = None
    try:
        key = asyncio.run(_key(env["REELGATE_DATABASE_URL"]))
        # 12 MiB: S3 parts are 8 MiB, so the first part is uploaded while the rest is still on its way.
        conn = _start_upload(port, key, size=12 * MIB, send=10 * MIB)
        _wait_for("a multipart upload begun", lambda: _bucket(moto, prefix)[1])
        api.kill()  # SIGKILL: no abort, no cleanup
    finally:
        api.kill()
        if conn is not None:
            conn.close()
    objects, uploads = _bucket(moto, prefix)
    assert objects == [] and len(uploads) == 1  # never visible as an object; its parts wait in the bucket
    # A worker's hourly sweep runs when it starts; unfinished writes older than 0 h are discarded.
    sweeper = Proc({**env, "REELGATE_INCOMPLETE_UPLOAD_HOURS": "0"}, "worker", log=tmp_path / "worker.log")
    try:
        _wait_for("the unfinished upload discarded", lambda: _bucket(moto, prefix) == ([], []), timeout=30)
    finally:
        sweeper.stop()
    with httpx.Client(timeout=5) as client:  # and nothing of it reachable through the bucket either
        assert client.get(f"{moto.endpoint}/{BUCKET}/{uploads[0]}").status_code in (403, 404)
