"""SQLite in WAL mode: reads inline on the event loop, writes group-committed and answered once the WAL is synced."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable, Coroutine, Sequence
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

    async def many(self, sql: str, rows: Sequence[Params]) -> None:
        self.raw.executemany(sql, rows)


def _run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that must not suspend; SQLite work is synchronous under its async signature."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("SQLite transaction work must not await anything but the connection")


MMAP_BYTES = 1 << 30


def _open_sqlite(path: str, busy_ms: int, synchronous: str = "FULL") -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    raw.row_factory = sqlite3.Row
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute(f"PRAGMA synchronous={synchronous}")
    raw.execute("PRAGMA foreign_keys=ON")
    raw.execute(f"PRAGMA busy_timeout={busy_ms}")
    # Pages read through a memory map rather than a pread each into SQLite's 2 MB cache: task polls at random ids
    # of a large table otherwise miss that cache at every B-tree level (GET with 100,000 stored tasks: 0.8x the
    # rate with 100; mapped: no slower). The mapped pages are the OS file cache's, counted in RSS as shared.
    raw.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    return raw


# Commits between two checkpoints: about SQLite's own 1,000 WAL pages at ~15 pages a commit of a submit burst.
CHECKPOINT_EVERY = 64
MAX_LOCK_SLEEP = 0.001
LOCK_WAIT = 10.0  # seconds a writer waits for another process's write transaction before giving up


def _resolve(batch: list[asyncio.Future[bool]], outcome: bool | BaseException) -> None:
    """Answer a batch's writes: True (done), False (run again in a new transaction) or the error they failed with."""
    for fut in batch:
        if not fut.done():
            fut.set_exception(outcome) if isinstance(outcome, BaseException) else fut.set_result(outcome)


class SqliteDatabase:
    """SQLite in WAL mode. Reads run inline on the event loop; writes are group-committed.

    Writes run one after another inside one shared open transaction. Its COMMIT appends to the WAL on the event
    loop (``synchronous=NORMAL``: no fsync there), and a fsync of the WAL on a thread then acknowledges every write
    of the batch at once: billing data, so nothing is answered before it is on disk. The next batch's writes run
    while that fsync is in flight. Checkpoints run on a thread too, between two write transactions.

    The price: another connection can read a commit a few milliseconds at most (one fsync) before it is on disk. A
    process crash loses nothing then (the OS has the WAL); a power cut in that window could undo a state a poll
    has seen, never one a writer was answered for. Anything acted on goes through a later write (a claim, a
    delivery lease), whose fsync covers every frame before it.

    A write that fails before changing anything (a refused reservation, a guard) fails alone at no cost. One that
    fails after changing rows cannot be undone alone without a SAVEPOINT per write, which would copy every page it
    touches: instead the open transaction is rolled back and the other writes of the batch run again in a new one
    (they have not been answered yet).
    """

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Waits for the lock in _begin, not in C. Its COMMITs are made durable by _sync, and it never checkpoints:
        # on the event loop that copied thousands of pages back and synced the database file (up to 300 ms).
        self._writer = _SqliteConn(_open_sqlite(path, busy_ms=0, synchronous="NORMAL"))
        self._writer.raw.execute("PRAGMA wal_autocheckpoint=0")
        self._unsynced: list[asyncio.Future[bool]] = []  # committed, answered once a fsync of the WAL covers them
        self._sync_task: asyncio.Task[None] | None = None
        self._wal_fd: int | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None  # new writes wait while it is set
        self._commits_since_checkpoint = 0
        self._reader = _SqliteConn(_open_sqlite(path, busy_ms=10_000))
        self._batch: list[asyncio.Future[bool]] = []  # resolved True once committed, False to run again
        self._in_tx = False
        self._commit_task: asyncio.Task[None] | None = None
        self._threads: set[asyncio.Future[None]] = set()  # fsyncs and checkpoints under way on threads
        self._closed = False

    async def read(self, work: Work[T]) -> T:
        try:
            return _run_to_end(work(self._reader))  # type: ignore[arg-type]
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def write(self, work: Work[T]) -> T:
        if self._closed:  # a straggler after shutdown: refused, never run on a closed connection
            raise StoreUnavailable("the database is closed")
        while True:
            await self._join_transaction()
            # No await between joining and the work: it runs inside the open transaction it joined.
            result = self._apply(work)
            done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._batch.append(done)
            if self._commit_task is None:
                self._commit_task = asyncio.create_task(self._commit())
            if await done:
                return result

    async def _join_transaction(self) -> None:
        while not self._in_tx:
            await self._begin()

    async def commit_statement(self, sql: str, params: Params) -> list[Row]:
        return await self.write(lambda c: c.all(sql, params))

    def _apply(self, work: Work[T]) -> T:
        raw = self._writer.raw
        changes = raw.total_changes
        try:
            return _run_to_end(work(self._writer))  # type: ignore[arg-type]
        except BaseException as exc:
            # SQLite undoes a failed statement by itself (and may roll back the whole transaction on a full
            # disk): only changes made by earlier statements of this work are left to undo.
            if raw.total_changes != changes or not raw.in_transaction:
                self._abandon()
            else:
                self._end_if_empty()
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreUnavailable(str(exc)) from exc
            raise

    def _abandon(self) -> None:
        """Roll back the open transaction; the writes already in it run again in the next one."""
        self._safe_rollback()
        self._in_tx = False
        batch, self._batch = self._batch, []
        _resolve(batch, False)

    async def _begin(self) -> None:
        """Take the write lock without blocking the event loop while another process holds it.

        The writer connection has no busy timeout; a busy database is retried here with short sleeps, so this
        process keeps answering reads meanwhile.
        """
        delay, waited = 0.001, 0.0
        while True:
            if self._checkpoint_task is not None:
                # From the moment it is scheduled, not from its first step: a writer that began in between would
                # run its statements on the connection the checkpoint's thread is using. asyncio.wait neither
                # cancels the checkpoint when this writer is cancelled nor raises its error here.
                await asyncio.wait([self._checkpoint_task])
                if self._in_tx:  # another writer of this process began meanwhile
                    return
            try:
                self._writer.raw.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:  # a closed database (a write during shutdown) included
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise StoreUnavailable(str(exc)) from exc
                if waited >= LOCK_WAIT:
                    raise StoreUnavailable(f"the database stayed locked for {LOCK_WAIT:g} s") from exc
                await asyncio.sleep(delay)
                waited += delay
                # Another process holds the lock for one batch, a few ms, and takes it again within a fraction of a
                # millisecond of its COMMIT when it has more writes waiting: a poller that sleeps long misses that
                # window again and again (POST p99 with 2 processes: 230-300 ms at 50 ms, 25 ms at 5). With submit
                # bursts batched, fewer writers poll at once: at 5 ms the p99 went back up to 87 ms; at 1 ms it is
                # 29 ms, and 1.25x the submits per second (A/B against b4bfb02).
                delay = min(delay * 2, MAX_LOCK_SLEEP)
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
        batch, self._batch = self._batch, []
        error: BaseException | None = None
        if self._in_tx:  # not when the transaction was abandoned meanwhile and nobody has begun a new one
            try:
                # On the loop: no fsync here, and the write lock is free for the next batch at once. On a thread
                # with its fsync, a COMMIT of 32 submits held it 3 ms as the busy loop saw it (0.5 ms alone), and
                # SQLite x1 left the loop 17% idle.
                self._writer.raw.execute("COMMIT")
            except sqlite3.Error as exc:
                error = StoreUnavailable(f"commit failed: {exc}")
                self._safe_rollback()
        self._in_tx = False
        self._commit_task = None
        if error is not None:
            _resolve(batch, error)
            return
        self._unsynced += batch
        if self._sync_task is None:
            self._sync_task = asyncio.create_task(self._sync())
        self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint >= CHECKPOINT_EVERY and self._checkpoint_task is None:
            self._commits_since_checkpoint = 0
            self._checkpoint_task = asyncio.create_task(self._checkpoint())

    async def _sync(self) -> None:
        """Fsync the WAL until every committed batch is covered; each fsync answers the batches committed before it."""
        try:
            while self._unsynced:
                batch, self._unsynced = self._unsynced, []
                outcome: bool | BaseException = True
                try:
                    await self._on_thread(self._fsync_wal)
                except (OSError, RuntimeError) as exc:  # RuntimeError: the loop's executor is shut down
                    outcome = StoreUnavailable(f"could not sync the database log: {exc}")
                _resolve(batch, outcome)
        finally:
            self._sync_task = None

    def _fsync_wal(self) -> None:
        wal = f"{self.path}-wal"
        # The WAL lives as long as any connection is open (ours are); the inode check guards a file made anew.
        if self._wal_fd is None or os.fstat(self._wal_fd).st_ino != os.stat(wal).st_ino:
            if self._wal_fd is not None:
                os.close(self._wal_fd)
            self._wal_fd = os.open(wal, os.O_RDONLY)
        os.fsync(self._wal_fd)

    async def _checkpoint(self) -> None:
        """Copy the WAL back into the database on a thread, between two write transactions.

        New writes wait for it (a few ms every CHECKPOINT_EVERY commits; reads do not): a checkpoint that writes
        go on beside never catches up, and the WAL is reused from its start only after one that did.
        """
        try:
            await self._on_thread(self._checkpoint_now)
        finally:
            self._checkpoint_task = None

    def _checkpoint_now(self) -> None:
        # PASSIVE: it copies what no reader still needs and never waits for readers or other processes.
        with contextlib.suppress(sqlite3.Error):  # busy (another process checkpoints) or a full disk: next time
            self._writer.raw.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _safe_rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._writer.raw.execute("ROLLBACK")

    async def open(self) -> None:
        return None

    async def ping(self) -> None:
        await self.read(lambda c: c.one("SELECT 1"))

    async def _on_thread(self, fn: Callable[[], None]) -> None:
        """``fn`` on a thread, tracked until the thread is done, whatever happens to the awaiting task."""
        work = asyncio.ensure_future(asyncio.to_thread(fn))
        self._threads.add(work)
        work.add_done_callback(self._threads.discard)
        await asyncio.shield(work)

    async def close(self) -> None:
        self._closed = True
        if self._commit_task is not None:
            await self._commit_task
        for task in (self._sync_task, self._checkpoint_task):
            if task is not None:
                await task
        if self._threads:
            # A cancelled sync or checkpoint leaves its thread running on the WAL's fd or the writer connection:
            # closing either under it is undefined behaviour in SQLite's C code (`reelgate demo` died of SIGSEGV on
            # Ctrl-C now and then, a fsync thread under way in the fault handler's dump).
            await asyncio.wait(self._threads)
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        self._writer.raw.close()
        self._reader.raw.close()
