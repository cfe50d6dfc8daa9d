"""SQLite in WAL mode: reads inline on the event loop, writes group-committed with synchronous=FULL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from reelgate.errors import StoreUnavailable
from reelgate.store.db import Conn, Params, Row, T, Work


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


MMAP_BYTES = 1 << 30


def _open_sqlite(path: str, busy_ms: int) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    raw.row_factory = sqlite3.Row
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")  # billing data: every acknowledged commit is on disk
    raw.execute("PRAGMA foreign_keys=ON")
    raw.execute(f"PRAGMA busy_timeout={busy_ms}")
    # Pages read through a memory map rather than a pread each into SQLite's 2 MB cache: task polls at random ids
    # of a large table otherwise miss that cache at every B-tree level (GET with 100,000 stored tasks: 0.8x the
    # rate with 100; mapped: no slower). The mapped pages are the OS file cache's, counted in RSS as shared.
    raw.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    return raw


MAX_LOCK_SLEEP = 0.005
LOCK_WAIT = 10.0  # seconds a writer waits for another process's write transaction before giving up


Pending = tuple[Work[Any], "asyncio.Future[Any]"]


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, bool]]) -> None:
    for fut, value, ok in outcomes:
        if not fut.done():
            fut.set_result(value) if ok else fut.set_exception(value)


class SqliteDatabase:
    """SQLite in WAL mode. Reads run inline on the event loop; writes are group-committed.

    Writers queue their work and wait. One committer task runs every queued work, one after another, inside one
    transaction, then COMMITs (the fsync) on a thread, and answers them all at once; the writes that arrive
    meanwhile form the next batch. A writer suspends once, and only the committer touches the transaction.

    A write that fails before changing anything (a refused reservation, a guard) fails alone at no cost. One that
    fails after changing rows cannot be undone alone without a SAVEPOINT per write, which would copy every page
    it touches: instead the transaction is rolled back, that write is answered with its error, and the others of
    the batch run again in a new one (none of them has been answered yet).
    """

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._writer = _SqliteConn(_open_sqlite(path, busy_ms=0))  # waits for the lock in _begin, not in C
        self._reader = _SqliteConn(_open_sqlite(path, busy_ms=10_000))
        self._queue: list[Pending] = []
        self._committer: asyncio.Task[None] | None = None

    async def read(self, work: Work[T]) -> T:
        try:
            return _run_to_end(work(self._reader))  # type: ignore[arg-type]
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def write(self, work: Work[T]) -> T:
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((work, done))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_queued())
        return await done

    async def pipeline(self, sql: str, params: list[Params]) -> list[Row | None]:
        async def work(c: Conn) -> list[Row | None]:
            return [await c.one(sql, p) for p in params]

        return await self.write(work)

    async def _commit_queued(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._commit_batch(batch)
        finally:
            self._committer = None

    async def _commit_batch(self, batch: list[Pending]) -> None:
        while batch:
            try:
                await self._begin()
            except StoreUnavailable as exc:
                _settle([(fut, exc, False) for _, fut in batch])
                return
            batch, outcomes = self._apply_all(batch)
            if batch:  # rolled back: run the rest again
                continue
            try:
                await asyncio.to_thread(self._writer.raw.execute, "COMMIT")
            except sqlite3.Error as exc:
                await asyncio.to_thread(self._safe_rollback)
                error = StoreUnavailable(f"commit failed: {exc}")
                outcomes = [(fut, error, False) for fut, _, _ in outcomes]
            _settle(outcomes)

    def _apply_all(self, batch: list[Pending]) -> tuple[list[Pending], list[tuple[asyncio.Future[Any], Any, bool]]]:
        """Run each work in the open transaction. Returns the works to run again (after a rollback) or none,
        and each work's outcome, to give once committed."""
        raw = self._writer.raw
        outcomes: list[tuple[asyncio.Future[Any], Any, bool]] = []
        for index, (work, fut) in enumerate(batch):
            if fut.done():  # its writer is gone (cancelled) before the work ran: nothing to do
                continue
            changes = raw.total_changes
            try:
                outcomes.append((fut, _run_to_end(work(self._writer)), True))  # type: ignore[arg-type]
            except Exception as exc:
                error = StoreUnavailable(str(exc)) if isinstance(exc, sqlite3.OperationalError) else exc
                # SQLite undoes a failed statement by itself (and may roll back the whole transaction on a full
                # disk): only changes made by earlier statements of this work are left to undo.
                if raw.total_changes != changes or not raw.in_transaction:
                    self._safe_rollback()
                    _settle([(fut, error, False)])
                    return batch[:index] + batch[index + 1 :], []
                _settle([(fut, error, False)])  # changed nothing: answered now, the batch goes on
        return [], outcomes

    async def _begin(self) -> None:
        """Take the write lock without blocking the event loop while another process holds it.

        The writer connection has no busy timeout; a busy database is retried here with short sleeps, so this
        process keeps answering reads meanwhile.
        """
        delay, waited = 0.001, 0.0
        while True:
            try:
                self._writer.raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise StoreUnavailable(str(exc)) from exc
                if waited >= LOCK_WAIT:
                    raise StoreUnavailable(f"the database stayed locked for {LOCK_WAIT:g} s") from exc
                await asyncio.sleep(delay)
                waited += delay
                # Another process holds the lock for one batch, a few ms: longer sleeps left it idle and let the
                # other take the lock again and again (POST p99 with 2 processes: 230-300 ms at 50 ms, 25 ms at 5).
                delay = min(delay * 2, MAX_LOCK_SLEEP)

    def _safe_rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._writer.raw.execute("ROLLBACK")

    async def open(self) -> None:
        return None

    async def ping(self) -> None:
        await self.read(lambda c: c.one("SELECT 1"))

    async def close(self) -> None:
        if self._committer is not None:
            await self._committer
        self._writer.raw.close()
        self._reader.raw.close()
