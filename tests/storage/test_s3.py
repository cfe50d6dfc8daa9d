"""What only the S3 backend has: a bucket that cannot be used surfaces as StorageUnavailable (an OSError the worker
retries) on every operation, put_many takes back what it wrote when one write fails, a stream over its cap aborts
its multipart upload, keys stay under the prefix, and presigned URLs are real."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from procs import free_port
from reelgate.assets import AssetStore, ObjectTooLarge
from reelgate.storage import S3Storage, StorageUnavailable
from storage.conftest import BUCKET, MIB, Backend, raw_s3, s3_location
from storage.s3_server import MotoS3

NAME = "a" * 32 + ".jpg"


async def _blocks(count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"\x00" * MIB


async def _every_operation_fails(storage: S3Storage, match: str) -> None:
    for attempt in (
        storage.put(NAME, b"data"),
        storage.put(NAME, _blocks(6)),
        storage.put_many([(NAME, b"data")]),
        storage.read(NAME),
        storage.open(NAME),
        storage.exists(NAME),
        storage.delete([NAME]),
        storage.discard_incomplete(0),
    ):
        with pytest.raises(StorageUnavailable, match=match):
            await attempt


async def test_an_unreachable_bucket_is_storage_unavailable_at_once(s3_server: MotoS3) -> None:
    storage = S3Storage(s3_location(s3_server, "x", endpoint_url=f"http://127.0.0.1:{free_port()}"), attempts=1,
                        connect_timeout=1)  # fmt: skip
    started = time.monotonic()
    try:
        await _every_operation_fails(storage, "Could not connect to the endpoint URL")
    finally:
        await storage.aclose()
    assert isinstance(StorageUnavailable(), OSError)  # the worker's retry-then-refund path for storage errors
    assert time.monotonic() - started < 10


async def test_a_missing_bucket_is_storage_unavailable_not_a_missing_object(s3_server: MotoS3) -> None:
    storage = S3Storage(s3_location(s3_server, "x", bucket="no-such-bucket"), attempts=1)
    try:
        for attempt in (storage.read(NAME), storage.open(NAME), storage.put(NAME, b"data")):
            with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
                await attempt
    finally:
        await storage.aclose()


async def test_put_many_takes_back_what_it_wrote_when_one_write_fails(
    s3: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = s3.storage
    assert isinstance(storage, S3Storage)
    real_put = S3Storage._put_object

    async def second_one_fails(self: S3Storage, key: str, data: object) -> None:
        if key.endswith("c" * 32 + ".png"):
            raise StorageUnavailable("the bucket went away")
        await real_put(self, key, data)  # type: ignore[arg-type]

    monkeypatch.setattr(S3Storage, "_put_object", second_one_fails)
    items = [("b" * 32 + ".jpg", b"one"), ("c" * 32 + ".png", b"two"), ("d" * 32 + ".jpg", b"three")]
    with pytest.raises(StorageUnavailable, match="went away"):
        await storage.put_many(items)
    assert await s3.leftovers() == []


async def test_a_stream_over_its_cap_aborts_its_multipart_upload(s3: Backend) -> None:
    assets = AssetStore(s3.storage)
    with pytest.raises(ObjectTooLarge):
        await assets.save_stream(_blocks(14), "mp4", account_id=1, task_id="t1", max_bytes=12 * MIB)
    assert await s3.leftovers() == []
    name, size = await assets.save_stream(_blocks(7), "mp4", account_id=1, task_id="t1", max_bytes=12 * MIB)
    assert size == 7 * MIB and await s3.leftovers() == [name]


async def test_keys_live_under_the_prefix_with_their_media_type(s3: Backend) -> None:
    await s3.storage.put(NAME, b"\xff\xd8 a picture")
    async with raw_s3(s3.server) as raw:  # type: ignore[arg-type]
        head = await raw.head_object(Bucket=BUCKET, Key=f"{s3.prefix}/{NAME}")
        everything = await raw.list_objects_v2(Bucket=BUCKET)
    assert head["ContentType"] == "image/jpeg"
    assert [o["Key"] for o in everything["Contents"] if o["Key"].endswith(NAME)] == [f"{s3.prefix}/{NAME}"]


async def test_a_presigned_url_serves_the_object_and_only_when_configured(s3_server: MotoS3) -> None:
    signing = S3Storage(s3_location(s3_server, "signed", presign_seconds=120))
    try:
        await signing.put(NAME, b"picture bytes")
        url = await signing.signed_url(NAME)
        assert url is not None and "X-Amz-Expires=120" in url and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).content == b"picture bytes"
        assert signing.public_url(NAME) is None  # what is handed out stays Reelgate's lasting /assets URL
        await signing.delete([NAME])
    finally:
        await signing.aclose()
