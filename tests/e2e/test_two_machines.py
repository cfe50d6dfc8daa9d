"""Two "machines" behind one load balancer: each a ``reelgate serve`` (its API and a worker) with a data directory of
its own, both on one PostgreSQL database and one S3 bucket (moto's server on loopback). An element
made through one is served, retrieved, listed and deleted through the other; its objects are in the bucket only
(neither data directory holds a byte of media) and gone from it, rows and all, once deleted (issue 22)."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import boto3
import httpx
import pytest

from dbs import truncate
from fakes import mediagen
from fakes.media_server import MediaServer
from harness import image_body
from procs import Proc, free_ports, reelgate_env
from reelgate.auth import hash_key, key_prefix, new_api_key
from reelgate.callbacks import new_secret
from reelgate.store.sql import Store
from storage.s3_server import ACCESS_KEY, REGION, SECRET_KEY, MotoS3

BUCKET = "reelgate-machines"
FRONT = mediagen.jpeg(768, 1024, scene=21)
SIDE = mediagen.jpeg(768, 1024, scene=22)


@pytest.fixture
def bucket(tmp_path: Path) -> Iterator[MotoS3]:
    with MotoS3(tmp_path / "moto.log") as server:
        server.make_bucket(BUCKET)
        yield server


def _in_bucket(server: MotoS3, prefix: str) -> list[str]:
    """Every object and every unfinished upload under the prefix, as the bucket itself lists them."""
    s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY)  # fmt: skip
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])
    uploads = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{prefix}/").get("Uploads", [])
    return sorted([o["Key"].removeprefix(f"{prefix}/") for o in objects] + [f"upload:{u['Key']}" for u in uploads])


def _wait_healthy(proc: Proc, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.popen.poll() is None, f"reelgate serve exited: {proc.log.read_text()[-2000:]}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"reelgate serve did not start: {proc.log.read_text()[-2000:]}")


def _wait(client: httpx.Client, task_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.get(f"/v1/tasks/{task_id}").json()
        if task["status"] in ("completed", "failed"):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish within {timeout} s")


async def _key(db_url: str) -> str:
    store = await Store.open(db_url, pool_size=1)
    try:
        acct = await store.accounts.ensure_account("acme", None, new_secret())
        await store.accounts.grant(acct, 10_000, "test")
        key = new_api_key()
        await store.accounts.add_key(acct, hash_key(key), key_prefix(key), "")
        return key
    finally:
        await store.close()


async def _asset_rows(db_url: str) -> int:
    conn = await asyncpg.connect(db_url)
    try:
        return int(await conn.fetchval("SELECT COUNT(*) FROM assets"))
    finally:
        await conn.close()


def test_an_element_made_through_one_machine_is_served_used_and_deleted_through_the_other(
    tmp_path: Path, pg_session_url: str, bucket: MotoS3
) -> None:
    asyncio.run(truncate(pg_session_url))
    prefix = f"machines-{uuid.uuid4().hex[:8]}"
    ports = free_ports(2)
    lb = f"http://127.0.0.1:{ports[0]}"  # the address clients are given (a load balancer's, in production)
    storage = {"REELGATE_STORAGE_URL": f"s3://{BUCKET}/{prefix}", "REELGATE_S3_ENDPOINT_URL": bucket.endpoint,
               "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION,
               "REELGATE_PUBLIC_BASE_URL": lb, "REELGATE_RATE_LIMIT_PER_MINUTE": "0"}  # fmt: skip
    dirs = [tmp_path / "machine-a", tmp_path / "machine-b"]
    envs = [reelgate_env(d, pg_session_url, **storage) for d in dirs]
    # Each machine's `reelgate serve` runs its API and a worker; both start at once (each takes seconds to import
    # and check the database), and the key is made meanwhile.
    machines = [Proc(env, "serve", "--port", str(port), log=tmp_path / f"machine-{i}.log")
                for i, (env, port) in enumerate(zip(envs, ports, strict=True))]  # fmt: skip
    try:
        key = asyncio.run(_key(pg_session_url))
        for machine, port in zip(machines, ports, strict=True):
            _wait_healthy(machine, port)
        headers = {"Authorization": f"Bearer {key}"}
        with MediaServer() as media, httpx.Client(base_url=lb, headers=headers, timeout=30) as a, \
                httpx.Client(base_url=f"http://127.0.0.1:{ports[1]}", headers=headers, timeout=30) as b:  # fmt: skip
            media.serve("/side.jpg", SIDE, "image/jpeg")
            # The frontal image is stored by machine A's API at submit; the side image by whichever worker runs it.
            front = "data:image/jpeg;base64," + base64.b64encode(FRONT).decode()
            submitted = a.post("/v1/videos/generations", json=image_body(front, media.url("/side.jpg")))
            assert submitted.status_code == 200, submitted.text
            task = _wait(b, submitted.json()["id"])
            assert task["status"] == "completed", task
            element = task["result_data"]
            images = element["element_image_list"]
            urls = [images["frontal_image"], images["refer_images"][0]["image_url"]]
            assert all(u.startswith(f"{lb}/assets/") for u in urls)
            names = [urlsplit(u).path.rsplit("/", 1)[-1] for u in urls]
            assert _in_bucket(bucket, prefix) == sorted(names)

            for client in (b, a):  # served by the machine that did not store it, and by the one that did
                for url, data in zip(urls, (FRONT, SIDE), strict=True):
                    got = client.get(urlsplit(url).path)
                    assert got.status_code == 200 and got.content == data
                    assert client.get(urlsplit(url).path, headers={"Range": "bytes=0-9"}).content == data[:10]
            element_id = element["element_id"]
            assert b.get(f"/v1/elements/{element_id}").json()["element_id"] == element_id
            assert [e["element_id"] for e in b.get("/v1/elements").json()["data"]] == [element_id]

            deleted = b.delete(f"/v1/elements/{element_id}")
            assert deleted.status_code == 200, deleted.text
            assert _in_bucket(bucket, prefix) == []  # objects and any unfinished upload: none
            for client in (a, b):
                assert client.get(f"/v1/elements/{element_id}").status_code == 404
                for url in urls:
                    assert client.get(urlsplit(url).path).status_code == 404
    finally:
        for machine in machines:
            machine.stop()
    assert asyncio.run(_asset_rows(pg_session_url)) == 0
    for data_dir in dirs:  # media never touched either machine's disk
        assert not (data_dir / "assets").exists() or list((data_dir / "assets").iterdir()) == []
