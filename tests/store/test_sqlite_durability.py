"""SQLite's pipelined commits: a write is answered only once a fsync of the WAL made after its COMMIT is done, the
next batch commits while that fsync is in flight, and checkpoints off the event loop keep the WAL bounded."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from reelgate.errors import StoreUnavailable
from reelgate.store.db import Conn, Work
from reelgate.store.sqlite import CHECKPOINT_EVERY, SqliteDatabase


def insert(note: str, size: int = 10) -> Work[int]:
    async def work(c: Conn) -> int:
        return await c.run("INSERT INTO notes (body) VALUES (:b)", {"b": note + "x" * size})

    return work


def committed_rows(path: str) -> int:
    """Rows another connection sees: what has been committed, synced or not."""
    with sqlite3.connect(path) as other:
        return int(other.execute("SELECT COUNT(*) FROM notes").fetchone()[0])


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = SqliteDatabase(str(tmp_path / "t.db"))
    await database.write(lambda c: c.run("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    yield database
    await database.close()


class HeldFsync:
    """os.fsync that waits for ``release``, recording each call."""

    def __init__(self, real: Callable[[int], None]) -> None:
        self.real = real
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, fd: int) -> None:
        self.calls += 1
        assert self.release.wait(10), "fsync was never released"
        self.real(fd)


@pytest.fixture
def held(db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch) -> HeldFsync:
    """os.fsync held until released, once ``db`` has made its table (that write syncs too)."""
    fsync = HeldFsync(os.fsync)
    monkeypatch.setattr(os, "fsync", fsync)
    return fsync


async def test_a_write_is_answered_only_after_its_wal_is_synced(db: SqliteDatabase, held: HeldFsync) -> None:
    first = asyncio.create_task(db.write(insert("first")))
    await asyncio.sleep(0.2)
    assert committed_rows(db.path) == 1  # committed to the WAL ...
    assert held.calls == 1 and not first.done()  # ... and unanswered while its fsync runs
    held.release.set()
    assert await asyncio.wait_for(first, 5) == 1


async def test_the_next_batch_commits_while_the_fsync_before_it_runs(db: SqliteDatabase, held: HeldFsync) -> None:
    first = asyncio.create_task(db.write(insert("first")))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(db.write(insert("second")))
    await asyncio.sleep(0.2)
    assert committed_rows(db.path) == 2  # the write lock was not held for the first batch's fsync
    assert not first.done() and not second.done()
    held.release.set()
    assert list(await asyncio.wait_for(asyncio.gather(first, second), 5)) == [1, 1]
    assert held.calls == 2  # the second batch waited for a fsync that began after its own COMMIT


async def test_a_failed_fsync_answers_the_batch_with_unavailable(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(StoreUnavailable, match="could not sync"):
        await asyncio.wait_for(db.write(insert("lost")), 5)


async def test_checkpoints_off_the_loop_keep_the_wal_bounded(db: SqliteDatabase) -> None:
    page = 4096
    commits = 6 * CHECKPOINT_EVERY
    for n in range(commits):
        await db.write(insert(f"row {n}", size=2 * page))  # each commit writes a few pages of its own
    wal = Path(f"{db.path}-wal").stat().st_size
    # Without checkpoints the WAL holds every commit's pages (6.5 MB here); with them it is reused from its start
    # after each checkpoint (about 1 MB: one checkpoint's worth of commits).
    assert wal < commits * 2 * page / 2, wal
    assert committed_rows(db.path) == commits


async def test_a_checkpoint_never_runs_beside_an_open_write_transaction(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real = db._checkpoint_now

    def checkpoint() -> None:  # on the checkpoint's thread, with the writer connection
        seen.append(db._in_tx)
        time.sleep(0.005)  # long enough for a writer on the event loop to try to begin meanwhile
        seen.append(db._in_tx)
        real()

    monkeypatch.setattr(db, "_checkpoint_now", checkpoint)

    # Writes begun in every loop turn, as requests arrive: one may come in the turn a checkpoint is started in.
    writes: list[asyncio.Task[int]] = []
    while len(seen) < 4 and len(writes) < 100 * CHECKPOINT_EVERY:  # two checkpoints, each seen twice
        writes.append(asyncio.create_task(db.write(insert(f"row {len(writes)}"))))
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*writes), 60)
    assert len(seen) >= 4 and not any(seen), seen
