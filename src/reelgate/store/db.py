"""The small async interface both database engines implement (store/engines.py picks one from a URL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = Mapping[str, Any]
Params = Mapping[str, Any]


class Conn(Protocol):
    """One connection inside a transaction (writes) or in autocommit (reads)."""

    async def one(self, sql: str, params: Params | None = None) -> Row | None: ...

    async def all(self, sql: str, params: Params | None = None) -> list[Row]: ...

    async def run(self, sql: str, params: Params | None = None) -> int: ...

    async def many(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement once per row of parameters (no result)."""


Work = Callable[[Conn], Awaitable[T]]


class Database(Protocol):
    dialect: str

    async def read(self, work: Work[T]) -> T: ...

    async def write(self, work: Work[T]) -> T: ...

    async def commit_statement(self, sql: str, params: Params) -> list[Row]:
        """Run one statement as a transaction of its own, committed when it returns; its rows."""

    async def open(self) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
