"""Delivery rows on both engines: claimed under a lease, every attempt logged, retries scheduled, dead at the end;
claims fair across accounts and capped per account, whichever dispatcher claims."""

from __future__ import annotations

import time

from reelgate.store.deliveries import NEXT_DUE, Attempt
from reelgate.store.sql import Store

from .factories import account, done, new_task, query_plan

CAP = 3


async def _delivery(store: Store, acct: int | None = None) -> str:
    acct = await account(store) if acct is None else acct
    rec, _ = await store.tasks.create(new_task(acct, callback="https://example.com/hook"), None)
    await store.tasks.claim("w", time.time(), 30, 1)
    await store.tasks.finish(done(rec.id, "w"))
    return rec.id


async def _deliveries(store: Store, name: str, count: int) -> tuple[int, list[str]]:
    acct = await account(store, name, credits=1000 * count)
    return acct, [await _delivery(store, acct) for _ in range(count)]


async def test_one_dispatcher_holds_a_delivery(store: Store) -> None:
    task_id = await _delivery(store)
    now = time.time()
    first = await store.deliveries.claim("d1", now, 20, 10, per_account=CAP)
    assert [d.task_id for d in first] == [task_id] and first[0].attempts == 0
    assert await store.deliveries.claim("d2", now, 20, 10, per_account=CAP) == []
    assert [d.task_id for d in await store.deliveries.claim("d2", now + 21, 20, 10, per_account=CAP)] == [task_id]


async def test_attempts_are_logged_and_scheduled(store: Store) -> None:
    task_id = await _delivery(store)
    now = time.time()
    due = (await store.deliveries.claim("d1", now, 20, 1, per_account=CAP))[0]
    retry = Attempt(due.id, 1, now, 12.5, 500, "HTTP 500", "retry", now + 1)
    assert await store.deliveries.record(retry, "d1")
    assert await store.deliveries.claim("d1", now + 0.5, 20, 1, per_account=CAP) == []
    again = (await store.deliveries.claim("d1", now + 1.1, 20, 1, per_account=CAP))[0]
    assert again.attempts == 1 and again.id == due.id
    assert await store.deliveries.record(Attempt(due.id, 2, now + 1.1, 3.0, 200, None, "delivered", None), "d1")
    delivery, attempts = await store.deliveries.for_task(task_id)
    assert delivery is not None and delivery["status"] == "delivered" and delivery["attempts"] == 2
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (2, 200)]


async def test_a_lost_lease_cannot_record(store: Store) -> None:
    await _delivery(store)
    now = time.time()
    due = (await store.deliveries.claim("d1", now, 0.01, 1, per_account=CAP))[0]
    await store.deliveries.claim("d2", now + 1, 20, 1, per_account=CAP)
    assert not await store.deliveries.record(Attempt(due.id, 1, now, 1.0, 200, None, "delivered", None), "d1")


async def test_an_account_with_many_due_cannot_queue_ahead_of_another(store: Store) -> None:
    loud, loud_tasks = await _deliveries(store, "loud", 8)
    quiet, quiet_tasks = await _deliveries(store, "quiet", 1)  # due after all of the loud account's
    now = time.time()
    first = await store.deliveries.claim("d1", now, 20, 2, per_account=CAP)
    assert sorted(d.account_id for d in first) == sorted([loud, quiet])  # one turn each, not the 2 oldest
    assert {d.task_id for d in first} == {loud_tasks[0], quiet_tasks[0]}


async def test_the_cap_holds_across_claims_and_dispatchers(store: Store) -> None:
    loud, _ = await _deliveries(store, "loud", 8)
    now = time.time()
    taken = await store.deliveries.claim("d1", now, 20, 2, per_account=CAP)
    taken += await store.deliveries.claim("d2", now, 20, 10, per_account=CAP)  # another dispatcher sees d1's leases
    assert len(taken) == CAP and len({d.id for d in taken}) == CAP
    assert await store.deliveries.claim("d3", now, 20, 10, per_account=CAP) == []
    quiet, quiet_tasks = await _deliveries(store, "quiet", 1)
    assert [d.task_id for d in await store.deliveries.claim("d3", now + 1, 20, 10, per_account=CAP)] == quiet_tasks
    # One attempt ends: the loud account has one slot again, and only one.
    assert await store.deliveries.record(Attempt(taken[0].id, 1, now, 5.0, 200, None, "delivered", None), "d1")
    again = await store.deliveries.claim("d3", now + 1, 20, 10, per_account=CAP)
    assert [d.account_id for d in again] == [loud]


async def test_next_due_ignores_an_account_at_its_cap(store: Store) -> None:
    await _deliveries(store, "loud", 5)
    now = time.time() + 1
    await store.deliveries.claim("d1", now, 20, 10, per_account=CAP)
    # Two loud deliveries are due but not claimable: the next time anything can be claimed is a lease running out.
    assert await store.deliveries.next_due(now, CAP) == now + 20
    assert (due := await store.deliveries.next_due(now, CAP + 2)) is not None and due < now


async def test_claims_read_indexes_not_the_backlog(store: Store) -> None:
    # A slow receiver can leave one account tens of thousands due: a claim reads each account's next few through
    # (status, account_id, next_attempt) and the live leases through (status, lease_expires, account_id).
    params = {"now": time.time(), "n": 16, "cap": CAP}
    for sql in (store.deliveries.candidates_sql, NEXT_DUE):
        plan = await query_plan(store, sql, params)
        assert "deliveries_by_account" in plan and "deliveries_by_lease" in plan, plan
        assert "deliveries_due" not in plan and "SCAN deliveries " not in f"{plan} " and "Seq Scan" not in plan, plan
