"""The storage protocol: put bytes or a stream, open for reading as a stream, delete, exists, a public URL."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol


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
    return; an OSError (full disk, no permission) propagates with nothing left behind."""

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
        """A URL the backend serves the object at by itself (a CDN, a presigned URL), or None: Reelgate serves
        it at ``/assets/<name>``."""
        ...

    async def aclose(self) -> None: ...
