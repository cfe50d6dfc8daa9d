"""SQLite in WAL mode: reads inline on the event loop, writes group-committed with synchronous=FULL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from reelgate.errors import StoreUnavailable
from reelgate.store.db import Params, Row, T, Work


class _SqliteConn:
    """Wraps sqlite3; the async methods never suspend, so a transaction runs as one uninterrupted step."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    async def one(self, sql: str, params: Params | None = None) -> Row | None:
        row: Row | None = self.raw.execute(sql, params or {}).fetchone()
        return row

    async def all(self, sql: str, params: Params | None = None) -> list[Row]:
        return list(self.raw.execute(sql, params or {}).fetchall())

    async def run(self, sql: str, params: Params | None = None) -> int:
        return self.raw.execute(sql, params or {}).rowcount


def _run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that must not suspend; SQLite work is synchronous under its async signature."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("SQLite transaction work must not await anything but the connection")


def _open_sqlite(path: str, busy_ms: int) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    raw.row_factory = sqlite3.Row
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")  # billing data: every acknowledged commit is on disk
    raw.execute("PRAGMA foreign_keys=ON")
    raw.execute(f"PRAGMA busy_timeout={busy_ms}")
    return raw


LOCK_WAIT = 10.0  # seconds a writer waits for another process's write transaction before giving up


class SqliteDatabase:
    """SQLite in WAL mode. Reads run inline on the event loop; writes are group-committed.

    Each write runs inside its own SAVEPOINT of one shared open transaction, so a failing write rolls back
    alone; the COMMIT (the fsync) runs on a thread and acknowledges every write of the batch at once.
    """

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._writer = _SqliteConn(_open_sqlite(path, busy_ms=0))  # waits for the lock in _begin, not in C
        self._reader = _SqliteConn(_open_sqlite(path, busy_ms=10_000))
        self._batch: list[asyncio.Future[None]] = []
        self._in_tx = False
        self._commit_task: asyncio.Task[None] | None = None
        self._committed = asyncio.Condition()
        self._committing = False
        self._seq = 0

    async def read(self, work: Work[T]) -> T:
        try:
            return _run_to_end(work(self._reader))  # type: ignore[arg-type]
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def write(self, work: Work[T]) -> T:
        while self._committing or not self._in_tx:
            if self._committing:  # the open transaction is being committed: join the next one
                async with self._committed:
                    await self._committed.wait_for(lambda: not self._committing)
            else:
                await self._begin()
        # No await between the checks above and the work: it runs inside the open transaction, never beside a
        # COMMIT that is running on the commit thread.
        result = self._apply(work)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append(done)
        if self._commit_task is None:
            self._commit_task = asyncio.create_task(self._commit())
        await done
        return result

    def _apply(self, work: Work[T]) -> T:
        raw = self._writer.raw
        try:
            self._seq += 1
            name = f"w{self._seq}"
            raw.execute(f"SAVEPOINT {name}")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        try:
            result: T = _run_to_end(work(self._writer))  # type: ignore[arg-type]
        except BaseException:
            raw.execute(f"ROLLBACK TO {name}")
            raw.execute(f"RELEASE {name}")
            self._end_if_empty()
            raise
        raw.execute(f"RELEASE {name}")
        return result

    async def _begin(self) -> None:
        """Take the write lock without blocking the event loop while another process holds it.

        The writer connection has no busy timeout; a busy database is retried here with short sleeps, so this
        process keeps answering reads meanwhile.
        """
        delay, waited = 0.001, 0.0
        while True:
            try:
                self._writer.raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise StoreUnavailable(str(exc)) from exc
                if waited >= LOCK_WAIT:
                    raise StoreUnavailable(f"the database stayed locked for {LOCK_WAIT:g} s") from exc
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 0.05)
                if self._in_tx:  # another writer of this process began meanwhile
                    return
                continue
            self._in_tx = True
            return

    def _end_if_empty(self) -> None:
        if not self._batch and self._commit_task is None and self._in_tx:
            self._writer.raw.execute("ROLLBACK")
            self._in_tx = False

    async def _commit(self) -> None:
        await asyncio.sleep(0)  # let writes that are ready in this loop turn join the batch
        async with self._committed:
            self._committing = True
        batch, self._batch = self._batch, []
        error: BaseException | None = None
        try:
            await asyncio.to_thread(self._writer.raw.execute, "COMMIT")
        except sqlite3.Error as exc:
            error = StoreUnavailable(f"commit failed: {exc}")
            await asyncio.to_thread(self._safe_rollback)
        self._in_tx = False
        self._commit_task = None
        for fut in batch:
            if not fut.done():
                fut.set_exception(error) if error else fut.set_result(None)
        async with self._committed:
            self._committing = False
            self._committed.notify_all()

    def _safe_rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._writer.raw.execute("ROLLBACK")

    async def open(self) -> None:
        return None

    async def ping(self) -> None:
        await self.read(lambda c: c.one("SELECT 1"))

    async def close(self) -> None:
        if self._commit_task is not None:
            await self._commit_task
        self._writer.raw.close()
        self._reader.raw.close()
