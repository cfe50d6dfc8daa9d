"""The file store for reference media and thumbnails: unguessable names, every file registered before it is written.

A stored file is named ``<token>.<ext>``, the token 24 random bytes (URL-safe Base64, 32 characters): its URL,
``/assets/<name>``, is a capability, given only to the account whose task stored it (and, to fetch it, to the
vendor), and nothing about it can be worked out from the picture. Each file belongs to the one task that stored it
(an upload at submit, or the worker's copy of a fetched item or a thumbnail), so deleting a task's files never
takes one another task or element still uses.

Files are registered in an ``AssetIndex`` (the database) before they are written, so every file on disk has a row
saying whose it is, and files nobody needs any more can be found by query, never by listing the directory.
Before capability names, files were named by their SHA-256; those names are still read for tasks that hold them,
but never served.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

EXTENSIONS = frozenset({"jpg", "png", "mp4", "mov"})
# Names are only ever ours: a token or a legacy hash and a known extension, so no "..", "/" or NUL gets through.
_NAME = re.compile(r"[A-Za-z0-9_-]{32}\.(?:jpg|png|mp4|mov)")
_LEGACY = re.compile(r"[0-9a-f]{64}\.(?:jpg|png|mp4|mov)")


class AssetIndex(Protocol):
    """Who owns each stored file (implemented by the store)."""

    async def register(self, names: Sequence[str], account_id: int, task_id: str) -> None: ...

    async def forget(self, names: Sequence[str]) -> None: ...


def new_name(ext: str) -> str:
    if ext not in EXTENSIONS:
        raise ValueError(f"unsupported asset extension {ext!r}")
    return f"{secrets.token_urlsafe(24)}.{ext}"


def is_capability(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


class AssetStore:
    """Files under one directory, named by ``new_name``; ``index`` records them (None: nothing is recorded)."""

    def __init__(self, root: Path, index: AssetIndex | None = None) -> None:
        self._root = root
        self._index = index

    @property
    def root(self) -> Path:
        return self._root

    async def save(self, items: Sequence[tuple[bytes, str]], *, account_id: int, task_id: str) -> list[str]:
        """Register then write ``(data, ext)`` items for a task; their names. On OSError nothing stays behind."""
        names = [new_name(ext) for _, ext in items]
        if self._index is not None:
            await self._index.register(names, account_id, task_id)
        try:
            await asyncio.to_thread(
                self._write_all, [(name, data) for name, (data, _) in zip(names, items, strict=True)]
            )
        except BaseException:
            await self.delete(names)
            raise
        return names

    async def delete(self, names: Sequence[str], *, forget: bool = True) -> None:
        """Remove files (gone already is fine) and, with ``forget``, their rows; a file's URL then answers 404."""
        if names:
            await asyncio.to_thread(self._unlink_all, list(names))
        if forget and self._index is not None and names:
            await self._index.forget(names)

    async def read(self, name: str) -> bytes | None:
        """The bytes of a stored object (legacy hash names included), or None when it is not there."""
        path = self.path_for(name)
        if path is None:
            return None
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    def path_for(self, name: str) -> Path | None:
        """The file for a stored name (legacy hash names included), or None for anything else."""
        if not (_NAME.fullmatch(name) or _LEGACY.fullmatch(name)):
            return None
        path = self._root / name
        return path if path.is_file() else None

    def public_path(self, name: str) -> Path | None:
        """The file ``/assets/<name>`` may serve: capability names only, so a content hash is never an address."""
        return self.path_for(name) if _NAME.fullmatch(name) else None

    def write(self, name: str, data: bytes) -> None:
        """Write one file atomically: a reader sees no file or all of it. OSError (e.g. ENOSPC) propagates."""
        self._root.mkdir(parents=True, exist_ok=True)
        self._write_atomically(self._root / name, data)

    def _write_all(self, named: list[tuple[str, bytes]]) -> None:
        for name, data in named:
            self.write(name, data)
        if named:
            self._fsync_dir()

    def _unlink_all(self, names: list[str]) -> None:
        for name in names:
            if _NAME.fullmatch(name) or _LEGACY.fullmatch(name):
                with contextlib.suppress(FileNotFoundError):
                    (self._root / name).unlink()

    def _write_atomically(self, target: Path, data: bytes) -> None:
        # A reader sees either no file or the whole file: write aside, flush to disk, then rename over.
        fd, tmp = tempfile.mkstemp(dir=self._root, prefix=".tmp-", suffix=target.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _fsync_dir(self) -> None:
        # The renames are durable only once the directory entries are on disk too.
        fd = os.open(self._root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
