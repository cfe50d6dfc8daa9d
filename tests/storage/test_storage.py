"""The storage interface on both backends (a real directory, a real S3-compatible server): bytes and streams in,
ranges out, atomic writes (a broken or cancelled stream leaves nothing, large streams go up in bounded memory),
unsafe names refused, unfinished writes swept."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from reelgate.storage import Storage
from storage.conftest import MIB, Backend

NAME = "a" * 32 + ".mp4"
BLOCK = bytes(range(256)) * 4096  # 1 MiB


async def _chunks(*parts: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if fail:
        raise OSError("the upload broke off")


async def _blocks(count: int, *, fail: bool = False, stall: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield BLOCK
    if stall is not None:
        stall.set()
        await asyncio.sleep(3600)  # until cancelled
    if fail:
        raise OSError("the upload broke off")


async def _read_range(storage: Storage, name: str, start: int, end: int, chunk: int = 3) -> bytes:
    reader = await storage.open(name)
    assert reader is not None
    try:
        return b"".join([piece async for piece in reader.chunks(start, end, chunk)])
    finally:
        await reader.aclose()


async def test_a_stream_is_stored_whole_and_read_back_in_ranges(backend: Backend) -> None:
    storage = backend.storage
    await storage.put(NAME, _chunks(b"0123", b"4567", b"89"))
    assert await storage.exists(NAME) and await storage.read(NAME) == b"0123456789"
    assert await _read_range(storage, NAME, 0, 9) == b"0123456789"
    assert await _read_range(storage, NAME, 2, 6) == b"23456"
    assert await _read_range(storage, NAME, 0, 3) == b"0123"  # from the start, not to the end
    assert await _read_range(storage, NAME, 9, 9) == b"9"
    reader = await storage.open(NAME)
    assert reader is not None and reader.info.size == 10 and reader.info.modified > 0
    await reader.aclose()  # opened, never read: closing is enough
    assert await backend.leftovers() == [NAME]  # nothing temporary left


async def test_bytes_put_read_and_overwritten_whole(backend: Backend) -> None:
    storage = backend.storage
    await storage.put(NAME, b"first")
    await storage.put(NAME, b"")
    assert await storage.read(NAME) == b"" and await storage.exists(NAME)
    await storage.put(NAME, _chunks())  # an empty stream is an empty object
    assert await storage.read(NAME) == b""


async def test_a_broken_stream_leaves_nothing(backend: Backend) -> None:
    with pytest.raises(OSError, match="broke off"):
        await backend.storage.put(NAME, _chunks(b"half", fail=True))
    assert await backend.leftovers() == [] and not await backend.storage.exists(NAME)


async def test_a_large_stream_goes_up_in_bounded_memory(backend: Backend) -> None:
    """40 MiB through put (on S3: eight 5 MiB parts of a multipart upload) never holds more than about two parts:
    one being sent while the next one fills."""
    assert not await backend.storage.exists(NAME)  # the S3 client is made (its service model loaded) before measuring
    tracemalloc.start()
    try:
        await backend.storage.put(NAME, _blocks(40))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB for a 40 MiB stream"
    reader = await backend.storage.open(NAME)
    assert reader is not None and reader.info.size == 40 * MIB
    digest = hashlib.sha256()
    async for piece in reader.chunks(0, reader.info.size - 1, 256 * 1024):
        digest.update(piece)
    await reader.aclose()
    assert digest.digest() == hashlib.sha256(BLOCK * 40).digest()
    assert await _read_range(backend.storage, NAME, 5 * MIB - 2, 5 * MIB + 1, 1024) == BLOCK[-2:] + BLOCK[:2]
    assert await backend.leftovers() == [NAME]


async def test_an_interrupted_large_stream_leaves_no_object_and_no_upload(backend: Backend) -> None:
    """A stream cut after two parts were sent: nothing visible, and on S3 the multipart upload is aborted."""
    await backend.storage.put(NAME, b"the old bytes")
    other = "b" * 32 + ".mp4"
    with pytest.raises(OSError, match="broke off"):
        await backend.storage.put(other, _blocks(12, fail=True))
    assert await backend.leftovers() == [NAME] and await backend.storage.read(other) is None


async def test_a_cancelled_large_stream_leaves_no_object_and_no_upload(backend: Backend) -> None:
    stalled = asyncio.Event()
    writing = asyncio.create_task(backend.storage.put(NAME, _blocks(12, stall=stalled)))
    await asyncio.wait_for(stalled.wait(), 30)
    writing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writing
    assert await backend.leftovers() == []


async def test_put_many_then_delete(backend: Backend) -> None:
    storage = backend.storage
    names = ["b" * 32 + ".jpg", "c" * 32 + ".png"]
    await storage.put_many([(names[0], b"one"), (names[1], b"two")])
    assert [await storage.read(n) for n in names] == [b"one", b"two"]
    await storage.delete(names)
    await storage.delete(names)  # gone already is fine
    await storage.delete([])
    assert [await storage.exists(n) for n in names] == [False, False]
    assert await storage.open(names[0]) is None and await storage.read(names[0]) is None
    assert storage.public_url(names[0]) is None and await storage.signed_url(names[0]) is None
    assert await backend.leftovers() == []


async def test_an_object_deleted_while_open_is_still_read_whole(backend: Backend) -> None:
    """Opening first, then streaming: a delete in between means the reader gets all of it, never half."""
    await backend.storage.put(NAME, BLOCK)
    reader = await backend.storage.open(NAME)
    assert reader is not None
    await backend.storage.delete([NAME])
    try:
        assert b"".join([piece async for piece in reader.chunks(0, len(BLOCK) - 1, 64 * 1024)]) == BLOCK
    finally:
        await reader.aclose()
    assert await backend.storage.open(NAME) is None


async def test_unfinished_writes_are_swept_once_old_enough(backend: Backend) -> None:
    await backend.storage.put(NAME, b"kept")
    await backend.abandon_a_write("c" * 32 + ".mp4")
    assert len(await backend.leftovers()) == 2
    if backend.kind == "directory":  # moto dates every multipart upload 2010-11-10, so only a real age counts here
        assert await backend.storage.discard_incomplete(older_than=7200) == 0  # younger: maybe a live writer's
    assert await backend.storage.discard_incomplete(older_than=0) == 1
    assert await backend.leftovers() == [NAME] and await backend.storage.read(NAME) == b"kept"


@pytest.mark.parametrize("name", ["../x.jpg", "a/b.jpg", "/etc/passwd", "", ".", "..", "x.jpg\x00", "noext"])
async def test_unsafe_names_never_reach_the_backend(backend: Backend, name: str) -> None:
    storage = backend.storage
    assert await storage.read(name) is None and await storage.open(name) is None and not await storage.exists(name)
    for data in (b"data", _chunks(b"data")):
        with pytest.raises(ValueError, match="not a storable object name"):
            await storage.put(name, data)
    with pytest.raises(ValueError, match="not a storable object name"):
        await storage.put_many([("d" * 32 + ".jpg", b"fine"), (name, b"data")])
    await storage.delete([name])
    assert await storage.signed_url(name) is None and await backend.leftovers() == []
