"""Cursor pages (``data``, ``has_more``, ``last_id``) that iterate over every item, fetching later pages on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from reelgate_client._errors import ReelgateError

T = TypeVar("T")


@dataclass(frozen=True)
class SyncPage(Generic[T]):
    """One page of a list; iterating it yields every item of this page and the pages after it."""

    data: list[T]
    has_more: bool
    last_id: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    fetch: Callable[[str], SyncPage[T]] | None = field(default=None, repr=False, compare=False)

    def has_next_page(self) -> bool:
        return self.has_more and bool(self.last_id) and self.fetch is not None

    def get_next_page(self) -> SyncPage[T]:
        if not self.has_next_page() or self.fetch is None or self.last_id is None:
            raise ReelgateError("there is no next page; check has_next_page() first")
        return self.fetch(self.last_id)

    def iter_pages(self) -> Iterator[SyncPage[T]]:
        page = self
        yield page
        while page.has_next_page():
            page = page.get_next_page()
            yield page

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.data


@dataclass(frozen=True)
class AsyncPage(Generic[T]):
    """The async twin of SyncPage: ``async for item in page`` walks every later page too."""

    data: list[T]
    has_more: bool
    last_id: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    fetch: Callable[[str], Awaitable[AsyncPage[T]]] | None = field(default=None, repr=False, compare=False)

    def has_next_page(self) -> bool:
        return self.has_more and bool(self.last_id) and self.fetch is not None

    async def get_next_page(self) -> AsyncPage[T]:
        if not self.has_next_page() or self.fetch is None or self.last_id is None:
            raise ReelgateError("there is no next page; check has_next_page() first")
        return await self.fetch(self.last_id)

    async def iter_pages(self) -> AsyncIterator[AsyncPage[T]]:
        page = self
        yield page
        while page.has_next_page():
            page = await page.get_next_page()
            yield page

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page.data:
                yield item


class AsyncPaginator(Generic[T]):
    """What an async ``list()`` returns: ``await`` it for the first page, or ``async for`` over every item."""

    def __init__(self, first: Callable[[], Awaitable[AsyncPage[T]]]) -> None:
        self._first = first

    def __await__(self) -> Generator[Any, None, AsyncPage[T]]:
        return self._first().__await__()

    async def __aiter__(self) -> AsyncIterator[T]:
        page = await self._first()
        async for item in page:
            yield item


def page_parts(body: Any) -> tuple[list[dict[str, Any]], bool, str | None, dict[str, Any]]:
    """The items, ``has_more`` and ``last_id`` of a list answer (tolerating a body that lacks them)."""
    raw: dict[str, Any] = body if isinstance(body, dict) else {}
    items = [item for item in raw.get("data") or [] if isinstance(item, dict)]
    last_id = raw.get("last_id")
    return items, bool(raw.get("has_more")), None if last_id is None else str(last_id), raw
