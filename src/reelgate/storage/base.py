"""The storage protocol: put bytes or a stream, open for reading as a stream, delete, exists, URLs; its one error."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

# A backend never trusts a name: one path component of safe characters, so no "..", "/" or NUL reaches a disk or
# becomes another key of a bucket.
_STORABLE = re.compile(r"[A-Za-z0-9_-]{1,128}\.[a-z0-9]{1,8}")


def is_storable(name: str) -> bool:
    return _STORABLE.fullmatch(name) is not None


class StorageUnavailable(OSError):
    """The backend cannot be used right now: unreachable, refusing our credentials, no such bucket, or a server
    error. Nothing half-written is left visible. An OSError, so every caller that already treats a failing disk as
    retryable (the worker retries the task, then fails it with a refund; a submit answers 503) treats it alike."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a reader knows about an object before sending it: its size and when it was written."""

    size: int
    modified: float  # seconds since the epoch


class ObjectReader(Protocol):
    """One object opened for reading. Opening first, then streaming, means an object deleted meanwhile is either
    sent whole or not found: never a half response."""

    info: ObjectInfo

    def chunks(self, start: int, end: int, chunk_size: int) -> AsyncIterator[bytes]:
        """The bytes from ``start`` to ``end`` inclusive, in chunks of at most ``chunk_size``."""
        ...

    async def aclose(self) -> None: ...


class Storage(Protocol):
    """Bytes kept under names. Writes are atomic (a reader sees no object or all of it) and durable when they
    return; an OSError (full disk, no permission, ``StorageUnavailable``) propagates with nothing left behind."""

    async def put(self, name: str, data: bytes | AsyncIterable[bytes]) -> None:
        """Store one object from bytes or a stream of chunks (held in bounded memory)."""
        ...

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store several objects; on failure none of them remains."""
        ...

    async def open(self, name: str) -> ObjectReader | None:
        """The object opened for streaming, or None when there is none by that name."""
        ...

    async def read(self, name: str) -> bytes | None:
        """The whole object, or None when there is none by that name."""
        ...

    async def exists(self, name: str) -> bool: ...

    async def delete(self, names: Sequence[str]) -> None:
        """Remove objects; a name already gone is fine."""
        ...

    def public_url(self, name: str) -> str | None:
        """A lasting URL the backend serves the object at by itself (a CDN), or None: Reelgate serves it at
        ``/assets/<name>``, which is what clients and vendors are given."""
        ...

    async def signed_url(self, name: str) -> str | None:
        """A short-lived URL the backend serves the object at by itself (an S3 presigned GET), when so configured,
        for ``/assets`` to redirect to; None: Reelgate streams the object itself."""
        ...

    async def discard_incomplete(self, older_than: float) -> int:
        """Remove writes that never finished (a process killed mid-upload) begun more than ``older_than`` seconds
        ago; how many. Never visible as objects, they only take space until a sweep calls this."""
        ...

    async def aclose(self) -> None: ...
