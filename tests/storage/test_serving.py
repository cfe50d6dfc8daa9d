"""GET/HEAD /assets/<name> over real HTTP from each backend (the whole app behind uvicorn on loopback): whole and
ranged reads, validators and immutable caching; on S3 with presigning, a redirect to a short-lived URL the bucket
serves, while HEAD and missing names keep Reelgate's answers."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness import make_settings
from procs import free_port
from reelgate.assets import new_name
from served import Served, serve
from storage.conftest import BUCKET, MIB
from storage.s3_server import ACCESS_KEY, REGION, SECRET_KEY, MotoS3

DATA = bytes(range(256)) * 4096 * 3  # 3 MiB: several chunks of a response


def _s3_settings(server: MotoS3, presign: int) -> dict[str, object]:
    return {"storage_url": f"s3://{BUCKET}/serve-{uuid.uuid4().hex[:8]}", "s3_endpoint_url": server.endpoint,
            "aws_region": REGION, "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY,
            "s3_presign_seconds": presign}  # fmt: skip


@pytest.fixture(params=["directory", "s3", "s3-presigned"])
async def served(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Served]:
    shutil.copy(sqlite_template, tmp_path / "reelgate.db")
    changes: dict[str, object] = {}
    if request.param != "directory":
        changes = _s3_settings(request.getfixturevalue("s3_server"), 60 if request.param == "s3-presigned" else 0)
    async with serve(make_settings(tmp_path, f"sqlite:///{tmp_path / 'reelgate.db'}", **changes)) as running:
        yield running


async def _stored(served: Served, data: bytes, ext: str = "mp4") -> str:
    name = new_name(ext)
    await served.rt.service.assets.storage.put(name, data)
    return f"/assets/{name}"


async def test_whole_ranged_and_conditional_reads(served: Served) -> None:
    path = await _stored(served, DATA)
    async with served.client() as c:
        whole = await c.get(path, follow_redirects=True)
        assert whole.status_code == 200 and whole.content == DATA
        assert whole.headers["content-type"] == "video/mp4"
        if served.rt.settings.s3_presign_seconds:
            return  # the rest is the bucket's own serving: see the redirect test
        assert whole.headers["cache-control"] == "private, max-age=300, immutable"
        assert whole.headers["content-length"] == str(len(DATA)) and whole.headers["accept-ranges"] == "bytes"
        etag = whole.headers["etag"]
        middle = await c.get(path, headers={"Range": f"bytes={MIB - 5}-{MIB + 4}"})
        assert middle.status_code == 206 and middle.content == DATA[MIB - 5 : MIB + 5]
        assert middle.headers["content-range"] == f"bytes {MIB - 5}-{MIB + 4}/{len(DATA)}"
        assert (await c.get(path, headers={"Range": "bytes=0-99"})).content == DATA[:100]
        assert (await c.get(path, headers={"Range": "bytes=-7"})).content == DATA[-7:]
        assert (await c.get(path, headers={"Range": f"bytes={len(DATA)}-"})).status_code == 416
        assert (await c.get(path, headers={"If-None-Match": etag})).status_code == 304
        head = await c.head(path)
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag


async def test_a_presigned_get_redirects_to_the_bucket(served: Served) -> None:
    path = await _stored(served, DATA, "jpg")
    async with served.client() as c:
        answer = await c.get(path)
        if not served.rt.settings.s3_presign_seconds:
            assert answer.status_code == 200 and answer.content == DATA
            return
        assert answer.status_code == 307 and answer.headers["cache-control"] == "no-store"
        target = answer.headers["location"]
        assert target.startswith(served.rt.settings.s3_endpoint_url) and "X-Amz-Signature=" in target
        assert "X-Amz-Expires=60" in target
        fetched = await c.get(target)
        assert fetched.content == DATA and fetched.headers["content-type"] == "image/jpeg"
        head = await c.head(path)  # a presigned GET does not sign HEAD: answered here
        assert head.status_code == 200 and head.headers["content-length"] == str(len(DATA))


async def test_a_missing_or_deleted_object_is_the_contracts_404(served: Served) -> None:
    path = await _stored(served, b"short-lived")
    await served.rt.service.assets.delete([path.rsplit("/", 1)[1]], forget=False)
    async with served.client() as c:
        for target in (path, f"/assets/{new_name('png')}"):
            for method in ("GET", "HEAD"):
                answer = await c.request(method, target)
                assert answer.status_code == 404, (method, target, answer.status_code)
                if method == "GET":
                    assert answer.json()["error"]["code"] == "asset_not_found"


async def test_a_dropped_client_leaves_the_server_serving(served: Served) -> None:
    """A client that hangs up mid-body: the backend's stream is closed, and the next request is served."""
    path = await _stored(served, DATA)
    async with served.client() as c:
        async with c.stream("GET", path, follow_redirects=True) as partial:
            async for _ in partial.aiter_raw(64 * 1024):
                break
        assert (await c.get(path, follow_redirects=True)).content == DATA


async def test_an_unreachable_bucket_answers_503_storage_unavailable(
    tmp_path: Path, sqlite_template: Path, s3_server: MotoS3
) -> None:
    shutil.copy(sqlite_template, tmp_path / "reelgate.db")
    changes = {**_s3_settings(s3_server, 0), "s3_endpoint_url": f"http://127.0.0.1:{free_port()}"}
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'reelgate.db'}", **changes)
    async with serve(settings) as down, down.client() as c:
        got = await c.get(f"/assets/{new_name('jpg')}")  # after the client's own retries (three attempts)
        assert got.status_code == 503 and got.headers["retry-after"] == "5", got.text
        assert got.json()["error"]["code"] == "storage_unavailable"
        assert (await c.head(f"/assets/{new_name('mp4')}")).status_code == 503
