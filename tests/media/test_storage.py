"""The directory backend of the storage interface, on a real directory: bytes and streams in, ranges out, atomic
writes, unsafe names refused, and nothing outside the interface needs a path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reelgate.storage import DirectoryStorage, Storage

NAME = "a" * 32 + ".mp4"


async def _chunks(*parts: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if fail:
        raise OSError("the upload broke off")


async def _read_range(storage: Storage, name: str, start: int, end: int) -> bytes:
    reader = await storage.open(name)
    assert reader is not None
    try:
        return b"".join([chunk async for chunk in reader.chunks(start, end, 3)])
    finally:
        await reader.aclose()


async def test_a_stream_is_stored_whole_and_read_back_in_ranges(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path / "objects")
    await storage.put(NAME, _chunks(b"0123", b"4567", b"89"))
    assert await storage.exists(NAME) and await storage.read(NAME) == b"0123456789"
    assert await _read_range(storage, NAME, 0, 9) == b"0123456789"
    assert await _read_range(storage, NAME, 2, 6) == b"23456"
    reader = await storage.open(NAME)
    assert reader is not None and reader.info.size == 10 and reader.info.modified > 0
    await reader.aclose()
    assert [p.name for p in (tmp_path / "objects").iterdir()] == [NAME]  # nothing temporary left


async def test_a_broken_stream_leaves_nothing(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    with pytest.raises(OSError, match="broke off"):
        await storage.put(NAME, _chunks(b"half", fail=True))
    assert list(tmp_path.iterdir()) == [] and not await storage.exists(NAME)


async def test_put_many_then_delete(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    names = ["b" * 32 + ".jpg", "c" * 32 + ".png"]
    await storage.put_many([(names[0], b"one"), (names[1], b"two")])
    assert [await storage.read(n) for n in names] == [b"one", b"two"]
    await storage.delete(names)
    await storage.delete(names)  # gone already is fine
    assert [await storage.exists(n) for n in names] == [False, False]
    assert await storage.open(names[0]) is None and storage.public_url(names[0]) is None


@pytest.mark.parametrize("name", ["../x.jpg", "a/b.jpg", "/etc/passwd", "", ".", "..", "x.jpg\x00", "noext"])
async def test_unsafe_names_never_reach_the_disk(tmp_path: Path, name: str) -> None:
    storage = DirectoryStorage(tmp_path / "objects")
    (tmp_path / "x.jpg").write_bytes(b"outside")
    assert await storage.read(name) is None and await storage.open(name) is None and not await storage.exists(name)
    with pytest.raises(ValueError, match="not a storable object name"):
        await storage.put(name, b"data")
    await storage.delete([name])
    assert (tmp_path / "x.jpg").read_bytes() == b"outside"
