"""The asset room for reference media, thumbnails and results: unguessable names, every object registered before it
is written, and released only when nothing needs it.

A stored object is named ``<token>.<ext>``, the token 24 random bytes (URL-safe Base64, 32 characters); a generated
result also carries the second it expires, ``<token>-e<expires>.<ext>``. Its URL, ``/assets/<name>``, is a
capability, given only to the account whose task stored it (and, to fetch it, to the vendor), and nothing about it
can be worked out from the content. Each object belongs to the one task that stored it (an upload at submit, the
worker's copy of a fetched item, a thumbnail, a result), so removing a task's objects never takes one another task
or element owns; a live task of the same account that names one by its URL holds it too (``store/uploads.py``).

Objects are registered in an ``AssetIndex`` (the database) before they are written, so every stored object has a row
saying whose it is, and objects nobody needs any more are found by query, never by listing the storage. The bytes
themselves live in a ``reelgate.storage.Storage`` backend (a directory or a bucket); nothing here sees a path.
Before capability names, files were named by their SHA-256; those names are still read for tasks that hold them,
but never served.
"""

from __future__ import annotations

import itertools
import math
import re
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from reelgate.storage import ObjectReader, Storage

EXTENSIONS = frozenset({"jpg", "png", "mp4", "mov"})
DAY = 86400.0
RESULT_RETENTION = 30 * DAY  # the default; REELGATE_RESULT_RETENTION_DAYS
# Names are only ever ours: a token (with a result's expiry) or a legacy hash and a known extension, so no "..",
# "/" or NUL gets through.
_NAME = re.compile(r"[A-Za-z0-9_-]{32}(?:-e(?P<expires>[0-9]{1,12}))?\.(?:jpg|png|mp4|mov)")
_LEGACY = re.compile(r"[0-9a-f]{64}\.(?:jpg|png|mp4|mov)")


@dataclass(frozen=True)
class Garbage:
    """An object nothing seems to need (``AssetIndex.release`` decides for sure), and where a sweep goes on from."""

    name: str
    account_id: int
    created: float


class AssetIndex(Protocol):
    """Who owns each stored object, and which ones nothing needs any more (implemented by the store)."""

    async def register(self, names: Sequence[str], account_id: int, task_id: str, *,
                       expires_at: float | None = None) -> None: ...  # fmt: skip

    async def forget(self, names: Sequence[str]) -> None: ...

    async def of_task(self, task_id: str) -> list[str]: ...

    async def garbage_after(self, before: float, *, now: float, results_before: float = 0.0,
                            after: Garbage | None = None, limit: int = 500) -> list[Garbage]: ...  # fmt: skip

    async def release(self, account_id: int, names: Sequence[str], *, now: float,
                      results_before: float = 0.0) -> list[str]: ...  # fmt: skip


def new_name(ext: str, expires_at: int | None = None) -> str:
    """A fresh capability name; with ``expires_at`` (Unix seconds), a result's, which says when it expires."""
    if ext not in EXTENSIONS:
        raise ValueError(f"unsupported asset extension {ext!r}")
    token = secrets.token_urlsafe(24)
    return f"{token}.{ext}" if expires_at is None else f"{token}-e{expires_at}.{ext}"


def is_capability(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def expiry_of(name: str) -> int | None:
    """When the object a capability name names expires (Unix seconds), or None: it lives as long as its owner."""
    match = _NAME.fullmatch(name)
    return int(match["expires"]) if match is not None and match["expires"] is not None else None


class AssetStore:
    """Objects in a ``Storage`` backend, named by ``new_name``; ``index`` records them (None: nothing is recorded).
    ``result_retention``: seconds a generated result is served after it is made."""

    def __init__(self, storage: Storage, index: AssetIndex | None = None, *,
                 result_retention: float = RESULT_RETENTION) -> None:  # fmt: skip
        self.storage = storage
        self._index = index
        self.result_retention = result_retention

    def result_expiry(self, now: float | None = None) -> int:
        """The second a result made ``now`` expires."""
        return math.ceil((time.time() if now is None else now) + self.result_retention)

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
                          max_bytes: int, expires_at: int | None = None) -> tuple[str, int]:  # fmt: skip
        """Register then write one object from a stream (a result video), never held whole in memory; its name and
        size. ``expires_at``: a result's expiry, in its name and its row. More than ``max_bytes`` raises
        ``ObjectTooLarge``; on any failure nothing stays behind."""
        name = new_name(ext, expires_at)
        if self._index is not None:
            await self._index.register([name], account_id, task_id, expires_at=expires_at)
        counted = CappedStream(chunks, max_bytes)
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

    async def release_task(self, task_id: str, account_id: int) -> list[str]:
        """Remove the objects of ``task_id`` that nothing needs any more (its element was deleted) and no live task of
        the account names by URL; their names. Those still held stay for the sweep."""
        if self._index is None:
            return []
        names = await self._index.of_task(task_id)
        released = await self._index.release(account_id, names, now=time.time())
        await self.delete(released)
        return released

    async def sweep(self, *, grace: float, batch: int = 500, now: float | None = None) -> int:
        """Remove every object nothing needs any more (see ``store/uploads.py``) that was registered over ``grace``
        seconds ago, in batches; how many. Idempotent, and safe to run in several processes at once."""
        if self._index is None:
            return 0
        now = time.time() if now is None else now
        results_before, removed, after = now - self.result_retention, 0, None
        while found := await self._index.garbage_after(now - grace, now=now, results_before=results_before,
                                                       after=after, limit=batch):  # fmt: skip
            after = found[-1]
            by_account = itertools.groupby(sorted(found, key=lambda g: g.account_id), key=lambda g: g.account_id)
            for account_id, rows in by_account:
                released = await self._index.release(account_id, [g.name for g in rows], now=now,
                                                      results_before=results_before)  # fmt: skip
                await self.delete(released)
                removed += len(released)
            if len(found) < batch:
                break
        return removed

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


class CappedStream:
    """Passes chunks through, counting them, and stops a stream that passes its cap with ObjectTooLarge ("the
    <what> is larger than N bytes"); the storage write it feeds is then undone by the backend."""

    def __init__(self, chunks: AsyncIterable[bytes], max_bytes: int, what: str = "object") -> None:
        self._chunks, self._max, self._what, self.total = chunks, max_bytes, what, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            self.total += len(chunk)
            if self.total > self._max:
                raise ObjectTooLarge(f"the {self._what} is larger than {self._max} bytes")
            yield chunk


def _stored_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None or _LEGACY.fullmatch(name) is not None
