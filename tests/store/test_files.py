"""File API rows on both engines: the quota counted in the reserving transaction, ready and unready, expiry, scoping."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import replace

from reelgate.store.files import FileRecord, FileStore
from reelgate.store.sql import Store

from .factories import account

GRACE = 3600.0


def record(account_id: int, *, created: float | None = None, ttl: float = 72 * 3600) -> FileRecord:
    now = time.time() if created is None else created
    token = secrets.token_hex(12)
    return FileRecord(id=f"file_{token}", account_id=account_id, name=f"{token}.png", file_name="a.png",
                      original_name="a.png", upload_path="images", mime_type="image/png", size=10, created=now,
                      expires_at=now + ttl)  # fmt: skip


async def test_reserve_counts_live_files_against_the_quota(store: Store) -> None:
    files = FileStore(store.db)
    acct = await account(store)
    now = time.time()
    first, second = record(acct), record(acct)
    assert await files.reserve(first, quota=2, now=now, grace=GRACE)
    assert await files.reserve(second, quota=2, now=now, grace=GRACE)
    assert not await files.reserve(record(acct), quota=2, now=now, grace=GRACE)  # full: nothing written
    assert (await files.quota(acct, now)).used == 2
    # Another account's quota is its own.
    other = await account(store, "globex")
    assert await files.reserve(record(other), quota=2, now=now, grace=GRACE)
    # An unready row expires after its grace period, a ready one at its own expiry: both free their place then.
    assert await files.mark_ready(first)
    later = now + GRACE + 1
    assert (await files.quota(acct, later)).used == 1
    assert await files.reserve(record(acct), quota=2, now=later, grace=GRACE)


async def test_unready_files_are_not_listed_or_found(store: Store) -> None:
    files = FileStore(store.db)
    acct = await account(store)
    now = time.time()
    pending = record(acct)
    await files.reserve(pending, quota=10, now=now, grace=GRACE)
    assert await files.page(acct, now, offset=0, limit=10) == ([], 0)
    assert await files.get(pending.id, acct, now) is None
    assert await files.by_name(pending.name, now) is None
    ready = replace(pending, size=1234, file_name="b.png")
    assert await files.mark_ready(ready)
    assert not await files.mark_ready(ready)  # once
    assert await files.get(pending.id, acct, now) == ready
    assert await files.by_name(pending.name, now) == ready
    quota = await files.quota(acct, now)
    assert quota.used == 1 and quota.next_expiry == ready.expires_at


async def test_page_is_newest_first_with_the_total_and_scoped(store: Store) -> None:
    files = FileStore(store.db)
    acct, other = await account(store), await account(store, "globex")
    now = time.time()
    mine = [record(acct, created=now - 100 + i) for i in range(5)]
    for r in [*mine, record(other)]:
        await files.reserve(r, quota=10, now=now, grace=GRACE)
        await files.mark_ready(r)
    expired = record(acct, created=now - 10, ttl=5)
    await files.reserve(expired, quota=10, now=now - 10, grace=GRACE)
    await files.mark_ready(expired)
    first, total = await files.page(acct, now, offset=0, limit=2)
    assert total == 5 and [r.id for r in first] == [mine[4].id, mine[3].id]
    rest, _ = await files.page(acct, now, offset=2, limit=10)
    assert [r.id for r in rest] == [mine[2].id, mine[1].id, mine[0].id]
    assert await files.get(expired.id, acct, now) is None  # expired: gone for its owner
    assert await files.get(mine[0].id, other, now) is None  # another account's: as if unknown


async def test_remove_is_scoped_and_expired_rows_are_found_for_the_sweep(store: Store) -> None:
    files = FileStore(store.db)
    acct, other = await account(store), await account(store, "globex")
    now = time.time()
    live, old, abandoned = record(acct), record(acct, created=now - 100, ttl=50), record(acct, created=now - 2 * GRACE)
    for r in (live, old):
        await files.reserve(r, quota=10, now=r.created, grace=GRACE)
        await files.mark_ready(r)
    await files.reserve(abandoned, quota=10, now=abandoned.created, grace=GRACE)  # its process died
    assert {r.id for r in await files.expired(now)} == {old.id, abandoned.id}
    assert len(await files.expired(now, limit=1)) == 1
    await files.forget([old.id, abandoned.id])
    assert await files.expired(now) == []
    assert not await files.remove(live.id, other)
    assert await files.remove(live.id, acct)
    assert not await files.remove(live.id, acct)


async def test_concurrent_reservations_never_pass_the_quota(store: Store) -> None:
    files = FileStore(store.db)
    acct = await account(store)
    now = time.time()
    taken = await asyncio.gather(*(files.reserve(record(acct), quota=3, now=now, grace=GRACE)
                                   for _ in range(8)))  # fmt: skip
    assert sum(taken) == 3
    assert (await files.quota(acct, now)).used == 3
