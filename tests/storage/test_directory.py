"""What only the directory backend has: chunks in the page cache are read on the event loop, others on a thread,
and both give the same bytes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from reelgate.storage import DirectoryStorage, directory

NAME = "a" * 32 + ".mp4"
DATA = os.urandom(3 * 1024 * 1024 + 17)


async def _ranges(storage: DirectoryStorage) -> list[bytes]:
    out = []
    for start, end in ((0, len(DATA) - 1), (1000, 2_000_000), (len(DATA) - 5, len(DATA) - 1)):
        reader = await storage.open(NAME)
        assert reader is not None
        out.append(b"".join([chunk async for chunk in reader.chunks(start, end, 256 * 1024)]))
        await reader.aclose()
    return out


EXPECTED = [DATA, DATA[1000:2_000_001], DATA[-5:]]


async def test_cached_chunks_are_read_without_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if directory._NOWAIT is None:
        pytest.skip("no RWF_NOWAIT on this platform")
    storage = DirectoryStorage(tmp_path)
    await storage.put(NAME, DATA)
    (tmp_path / NAME).read_bytes()  # in the page cache now
    hops: list[Any] = []
    real = asyncio.to_thread

    async def counted(fn: Any, *args: Any) -> Any:
        hops.append(fn)
        return await real(fn, *args)

    monkeypatch.setattr(directory.asyncio, "to_thread", counted)
    assert await _ranges(storage) == EXPECTED
    assert os.pread not in hops


async def test_chunks_not_cached_or_without_nowait_are_read_on_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = DirectoryStorage(tmp_path)
    await storage.put(NAME, DATA)
    fd = os.open(tmp_path / NAME, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # written and fsynced: its pages can be dropped
    finally:
        os.close(fd)
    assert await _ranges(storage) == EXPECTED
    monkeypatch.setattr(directory, "_NOWAIT", None)
    assert await _ranges(storage) == EXPECTED
