"""Task rows on both engines: reservation at create, leases, progress, and the exactly-once terminal transition."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from reelgate.errors import InsufficientQuota, RateLimited, StoreUnavailable
from reelgate.store.sql import Store
from reelgate.store.tasks import Finish, Idempotency

from .factories import account, done, new_task


async def test_create_reserves_credits_and_writes_the_ledger(store: Store) -> None:
    acct = await account(store, credits=2000)
    rec, replay = await store.tasks.create(new_task(acct), None)
    assert replay is None and rec.status == "pending" and rec.progress == 0 and rec.can_cancel
    view = await store.accounts.view(acct)
    assert (view.balance.available, view.balance.reserved, view.in_flight) == (1000, 1000, 1)
    assert await store.accounts.ledger_sums(acct) == {"grant": 2000, "reserve": 1000}


async def test_short_balance_creates_nothing(store: Store) -> None:
    acct = await account(store, credits=500)
    with pytest.raises(InsufficientQuota):
        await store.tasks.create(new_task(acct), None)
    assert await store.tasks.list_for_account(acct, status="", model="", after="", limit=10) == []
    assert (await store.accounts.view(acct)).balance.available == 500


async def test_in_flight_cap_answers_rate_limited(store: Store) -> None:
    acct = await account(store, credits=5000)
    await store.tasks.create(new_task(acct, cap=1), None)
    with pytest.raises(RateLimited):
        await store.tasks.create(new_task(acct, cap=1), None)


async def test_concurrent_creates_never_overdraw(store: Store) -> None:
    acct = await account(store, credits=3000)
    results = await asyncio.gather(*(store.tasks.create(new_task(acct), None) for _ in range(12)),
                                   return_exceptions=True)  # fmt: skip
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, InsufficientQuota)]
    assert len(created) == 3 and len(refused) == 9
    view = await store.accounts.view(acct)
    assert (view.balance.available, view.balance.reserved, view.in_flight) == (0, 3000, 3)
    assert await store.accounts.ledger_sums(acct) == {"grant": 3000, "reserve": 3000}
    listed = await store.tasks.list_for_account(acct, status="", model="", after="", limit=20)
    assert sorted(t.id for t in listed) == sorted(rec.id for rec, _ in created)


async def test_a_burst_is_reserved_as_if_its_submits_came_one_by_one(store: Store) -> None:
    acct = await account(store, credits=1501)
    burst = [new_task(acct, price=1000), new_task(acct, price=1000), new_task(acct, price=500),
             new_task(acct, price=1, cap=2)]  # fmt: skip
    outcomes = await asyncio.gather(*(store.tasks.create(t, None) for t in burst), return_exceptions=True)
    # The second no longer fits after the first, the third still does, the fourth meets its in-flight cap.
    assert [type(o).__name__ for o in outcomes] == ["tuple", "InsufficientQuota", "tuple", "RateLimited"]
    view = await store.accounts.view(acct)
    assert (view.balance.available, view.balance.reserved, view.in_flight) == (1, 1500, 2)


async def test_two_processes_bursting_on_one_account_never_overdraw(store: Store, db_url: str) -> None:
    acct = await account(store, credits=25_000)
    other = await Store.open(db_url, pool_size=4)  # what a second API process holds
    try:
        bursts = [s.tasks.create(new_task(acct), None) for s in (store, other) for _ in range(20)]
        outcomes = await asyncio.gather(*bursts, return_exceptions=True)
    finally:
        await other.close()
    made = [o for o in outcomes if isinstance(o, tuple)]
    assert len(made) == 25 and all(isinstance(o, (tuple, InsufficientQuota)) for o in outcomes)
    view = await store.accounts.view(acct)
    assert (view.balance.available, view.balance.reserved, view.in_flight) == (0, 25_000, 25)
    assert await store.accounts.ledger_sums(acct) == {"grant": 25_000, "reserve": 25_000}


async def test_idempotency_replays_the_original_task(store: Store) -> None:
    acct = await account(store)
    idem = Idempotency(api_key_id=1, key="k1", body_hash="h1")
    first, replay = await store.tasks.create(new_task(acct), idem)
    again, first_hash = await store.tasks.create(new_task(acct), idem)
    assert replay is None and again.id == first.id and first_hash == "h1"
    assert (await store.accounts.view(acct)).balance.reserved == 1000


async def test_a_task_is_claimed_by_one_worker_at_a_time(store: Store) -> None:
    acct = await account(store)
    rec, _ = await store.tasks.create(new_task(acct), None)
    now = time.time()
    first = await store.tasks.claim("w1", now, 30, 5)
    second = await store.tasks.claim("w2", now, 30, 5)
    assert [c.id for c in first] == [rec.id] and second == []
    assert first[0].took_over is False
    assert await store.tasks.heartbeat(rec.id, "w1", now + 60)
    assert not await store.tasks.heartbeat(rec.id, "w2", now + 60)


async def test_an_expired_lease_is_taken_over(store: Store) -> None:
    acct = await account(store)
    rec, _ = await store.tasks.create(new_task(acct), None)
    now = time.time()
    await store.tasks.claim("w1", now, 0.01, 1)
    taken = await store.tasks.claim("w2", now + 1, 30, 1)
    assert [c.id for c in taken] == [rec.id] and taken[0].took_over and taken[0].attempts == 2
    assert await store.tasks.finish(done(rec.id, "w1")) is None  # the old owner can no longer finish it
    assert await store.tasks.finish(done(rec.id, "w2")) is not None


async def test_progress_never_decreases(store: Store) -> None:
    acct = await account(store)
    rec, _ = await store.tasks.create(new_task(acct), None)
    await store.tasks.claim("w1", time.time(), 30, 1)
    await store.tasks.progress(rec.id, "w1", 40, time.time())
    await store.tasks.progress(rec.id, "w1", 20, time.time())
    got = await store.tasks.get(rec.id)
    assert got is not None and got.progress == 40 and got.status == "processing"


async def test_finish_settles_exactly_once(store: Store) -> None:
    acct = await account(store, credits=1000)
    rec, _ = await store.tasks.create(new_task(acct, callback="https://example.com/hook"), None)
    await store.tasks.claim("w1", time.time(), 30, 1)
    finished = await store.tasks.finish(done(rec.id, "w1"))
    assert finished is not None and finished.status == "completed" and finished.progress == 100
    assert finished.charged == 1000 and not finished.can_cancel
    assert await store.tasks.finish(done(rec.id, "w1")) is None
    assert await store.tasks.finish(done(rec.id, "w1", ok=False)) is None
    view = await store.accounts.view(acct)
    assert (view.balance.available, view.balance.reserved, view.balance.captured, view.in_flight) == (0, 0, 1000, 0)
    delivery, _ = await store.deliveries.for_task(rec.id)
    assert delivery is not None and delivery["status"] == "pending"


async def test_failure_releases_the_reservation(store: Store) -> None:
    acct = await account(store, credits=1000)
    rec, _ = await store.tasks.create(new_task(acct), None)
    await store.tasks.claim("w1", time.time(), 30, 1)
    failed = await store.tasks.finish(done(rec.id, "w1", ok=False))
    assert failed is not None and failed.status == "failed" and failed.charged == 0
    assert failed.error_code == "unknown_error"
    assert (await store.accounts.view(acct)).balance.available == 1000
    assert await store.accounts.ledger_sums(acct) == {"grant": 1000, "reserve": 1000, "release": 1000}


async def test_cancel_only_while_cancellable(store: Store) -> None:
    acct = await account(store)
    rec, _ = await store.tasks.create(new_task(acct), None)
    await store.tasks.claim("w1", time.time(), 30, 1)
    await store.tasks.save_state(rec.id, "w1", {"upstream": "x"}, cancellable=False)
    cancel = Finish(task_id=rec.id, status="failed", now=time.time(), guard="cancel", account_id=acct,
                    error_code="request_cancelled", error_message="x", webhook_id="msg_1")  # fmt: skip
    assert await store.tasks.finish(cancel) is None
    other = await account(store, "other")
    rec2, _ = await store.tasks.create(new_task(acct), None)
    wrong_tenant = Finish(task_id=rec2.id, status="failed", now=time.time(), guard="cancel", account_id=other,
                          error_code="request_cancelled", error_message="x", webhook_id="msg_2")  # fmt: skip
    assert await store.tasks.finish(wrong_tenant) is None
    ok = Finish(task_id=rec2.id, status="failed", now=time.time(), guard="cancel", account_id=acct,
                error_code="request_cancelled", error_message="x", webhook_id="msg_3")  # fmt: skip
    cancelled = await store.tasks.finish(ok)
    assert cancelled is not None and cancelled.error_code == "request_cancelled"


async def test_deadline_sweep_only_takes_unleased_overdue_tasks(store: Store) -> None:
    acct = await account(store)
    late, _ = await store.tasks.create(new_task(acct, deadline=-1), None)
    fresh, _ = await store.tasks.create(new_task(acct), None)
    assert await store.tasks.overdue(time.time()) == [late.id]
    sweep = Finish(task_id=late.id, status="failed", now=time.time(), guard="expired",
                   error_code="generation_timeout", error_message="late", webhook_id="msg_x")  # fmt: skip
    assert (await store.tasks.finish(sweep)) is not None
    assert fresh.id not in await store.tasks.overdue(time.time())


async def test_reschedule_releases_the_lease_until_run_after(store: Store) -> None:
    acct = await account(store)
    rec, _ = await store.tasks.create(new_task(acct), None)
    now = time.time()
    await store.tasks.claim("w1", now, 30, 1)
    assert await store.tasks.reschedule(rec.id, "w1", now + 5, {"polls": 1})
    assert await store.tasks.claim("w2", now + 1, 30, 1) == []
    again = await store.tasks.claim("w2", now + 6, 30, 1)
    assert again[0].state == {"polls": 1} and not again[0].took_over


async def test_listing_is_newest_first_with_a_cursor(store: Store) -> None:
    acct = await account(store, credits=10_000)
    ids = [(await store.tasks.create(new_task(acct), None))[0].id for _ in range(5)]
    page = await store.tasks.list_for_account(acct, status="", model="", after="", limit=3)
    assert [t.id for t in page] == ids[::-1][:3]
    rest = await store.tasks.list_for_account(acct, status="", model="", after=page[-1].id, limit=3)
    assert [t.id for t in rest] == ids[::-1][3:]


async def test_concurrent_reads_each_get_their_own_row(store: Store) -> None:
    acct = await account(store, credits=30_000)
    ids = [(await store.tasks.create(new_task(acct), None))[0].id for _ in range(20)]
    wanted = [*ids, *ids, "task-unified-1-missing0"]
    got = await asyncio.gather(*(store.tasks.get(task_id) for task_id in wanted))
    assert [g.id if g else None for g in got] == [*ids, *ids, None]
    other = await account(store, "other")
    assert await store.tasks.get(ids[0], other) is None


async def test_sqlite_writer_waits_for_another_process_without_blocking_reads(tmp_path: Path,
                                                                              sqlite_template: Path) -> None:  # fmt: skip
    path = tmp_path / "locked.db"
    shutil.copy(sqlite_template, path)
    store = await Store.open(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)  # stands for another reelgate process
    try:
        acct = await account(store)
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(store.tasks.create(new_task(acct), None))
        started = time.monotonic()
        for _ in range(5):  # reads keep being answered while the writer waits for the lock
            assert await store.tasks.get("task-unified-1-aaaaaaaa") is None
            await asyncio.sleep(0.02)
        assert not write.done() and time.monotonic() - started < 1
        other.execute("COMMIT")
        rec, _ = await asyncio.wait_for(write, 5)
        assert (await store.tasks.get(rec.id)) is not None
    finally:
        other.close()
        await store.close()


async def test_concurrent_reads_share_a_query_and_each_gets_its_own_task(store: Store) -> None:
    acme, other = await account(store, "acme"), await account(store, "other")
    mine = [(await store.tasks.create(new_task(acme), None))[0] for _ in range(3)]
    theirs = (await store.tasks.create(new_task(other), None))[0]
    ids = [t.id for t in mine] * 5 + [theirs.id, "task-unified-1-nosuchid"]
    got = await asyncio.gather(*(store.tasks.get(i, acme) for i in ids))
    assert [g.id if g else None for g in got] == [t.id for t in mine] * 5 + [None, None]
    assert (await store.tasks.get(theirs.id, other)) == theirs


async def test_a_create_that_breaks_a_constraint_fails_alone_in_its_burst(store: Store) -> None:
    acct = await account(store, credits=10_000)
    clash = new_task(acct)
    await store.tasks.create(clash, None)
    burst = [new_task(acct), clash, new_task(acct)]  # the same id again cannot be inserted
    outcomes = await asyncio.gather(*(store.tasks.create(t, None) for t in burst), return_exceptions=True)
    assert not isinstance(outcomes[0], BaseException) and not isinstance(outcomes[2], BaseException)
    assert isinstance(outcomes[1], Exception)
    view = await store.accounts.view(acct)
    assert (view.balance.reserved, view.in_flight) == (3000, 3)


async def test_submits_during_an_outage_each_fail_and_none_waits_forever(store: Store) -> None:
    acct = await account(store, credits=10_000)
    await store.db.close()  # every write now fails before its work runs
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.tasks.create(new_task(acct), None), 5)
