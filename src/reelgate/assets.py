"""The asset room for reference media and thumbnails: unguessable names, every object registered before it is written.

A stored file is named ``<token>.<ext>``, the token 24 random bytes (URL-safe Base64, 32 characters): its URL,
``/assets/<name>``, is a capability, given only to the account whose task stored it (and, to fetch it, to the
vendor), and nothing about it can be worked out from the picture. Each file belongs to the one task that stored it
(an upload at submit, or the worker's copy of a fetched item or a thumbnail), so deleting a task's files never
takes one another task or element still uses.

Files are registered in an ``AssetIndex`` (the database) before they are written, so every stored object has a row
saying whose it is, and objects nobody needs any more can be found by query, never by listing the storage. The bytes
themselves live in a ``reelgate.storage.Storage`` backend (a directory by default); nothing here sees a path.
Before capability names, files were named by their SHA-256; those names are still read for tasks that hold them,
but never served.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Protocol

from reelgate.storage import ObjectReader, Storage

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
    """Objects in a ``Storage`` backend, named by ``new_name``; ``index`` records them (None: nothing is recorded)."""

    def __init__(self, storage: Storage, index: AssetIndex | None = None) -> None:
        self.storage = storage
        self._index = index

    async def save(self, items: Sequence[tuple[bytes, str]], *, account_id: int, task_id: str) -> list[str]:
        """Register then write ``(data, ext)`` items for a task; their names. On OSError nothing stays behind."""
        names = [new_name(ext) for _, ext in items]
        if self._index is not None:
            await self._index.register(names, account_id, task_id)
        try:
            await self.storage.put_many([(name, data) for name, (data, _) in zip(names, items, strict=True)])
        except BaseException:
            await self.delete(names)
            raise
        return names

    async def save_stream(self, chunks: AsyncIterable[bytes], ext: str, *, account_id: int, task_id: str,
                          max_bytes: int) -> tuple[str, int]:  # fmt: skip
        """Register then write one object from a stream (a result video), never held whole in memory; its name and
        size. More than ``max_bytes`` raises ``ObjectTooLarge``; on any failure nothing stays behind."""
        name = new_name(ext)
        if self._index is not None:
            await self._index.register([name], account_id, task_id)
        counted = _Counted(chunks, max_bytes)
        try:
            await self.storage.put(name, counted)
        except BaseException:
            await self.delete([name])
            raise
        return name, counted.total

    async def delete(self, names: Sequence[str], *, forget: bool = True) -> None:
        """Remove objects (gone already is fine) and, with ``forget``, their rows; a URL then answers 404."""
        stored = [name for name in names if _stored_name(name)]
        if stored:
            await self.storage.delete(stored)
        if forget and self._index is not None and names:
            await self._index.forget(names)

    async def read(self, name: str) -> bytes | None:
        """The bytes of a stored object (legacy hash names included), or None when it is not there."""
        return await self.storage.read(name) if _stored_name(name) else None

    async def open_public(self, name: str) -> ObjectReader | None:
        """The object ``/assets/<name>`` may serve: capability names only, so a content hash is never an address."""
        return await self.storage.open(name) if is_capability(name) else None

    async def signed_url(self, name: str) -> str | None:
        """A short-lived URL the backend itself serves a ``/assets`` object at (an S3 presigned GET, when so
        configured), or None: Reelgate streams it. Capability names of objects that exist only, so a revoked name
        still answers the contract's 404 rather than the bucket's."""
        if not is_capability(name):
            return None
        url = await self.storage.signed_url(name)
        return url if url is not None and await self.storage.exists(name) else None

    def url(self, name: str, base_url: str) -> str:
        """Where a client (or a vendor) fetches an object: the backend's own URL, else Reelgate's ``/assets``."""
        return self.storage.public_url(name) or f"{base_url}/assets/{name}"

    async def aclose(self) -> None:
        await self.storage.aclose()


class ObjectTooLarge(ValueError):
    """A streamed object passed its size cap; what was written of it is gone."""


class _Counted:
    """Passes chunks through, counting them, and stops a stream that passes its cap."""

    def __init__(self, chunks: AsyncIterable[bytes], max_bytes: int) -> None:
        self._chunks, self._max, self.total = chunks, max_bytes, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            self.total += len(chunk)
            if self.total > self._max:
                raise ObjectTooLarge(f"the object is larger than {self._max} bytes")
            yield chunk


def _stored_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None or _LEGACY.fullmatch(name) is not None
