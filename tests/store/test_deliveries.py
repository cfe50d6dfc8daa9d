"""Delivery rows on both engines: claimed under a lease, every attempt logged, retries scheduled, dead at the end."""

from __future__ import annotations

import time

from reelgate.store.deliveries import Attempt
from reelgate.store.sql import Store

from .factories import account, done, new_task


async def _delivery(store: Store) -> str:
    acct = await account(store)
    rec, _ = await store.tasks.create(new_task(acct, callback="https://example.com/hook"), None)
    await store.tasks.claim("w", time.time(), 30, 1)
    await store.tasks.finish(done(rec.id, "w"))
    return rec.id


async def test_one_dispatcher_holds_a_delivery(store: Store) -> None:
    task_id = await _delivery(store)
    now = time.time()
    first = await store.deliveries.claim("d1", now, 20, 10)
    assert [d.task_id for d in first] == [task_id] and first[0].attempts == 0
    assert await store.deliveries.claim("d2", now, 20, 10) == []
    assert [d.task_id for d in await store.deliveries.claim("d2", now + 21, 20, 10)] == [task_id]


async def test_attempts_are_logged_and_scheduled(store: Store) -> None:
    task_id = await _delivery(store)
    now = time.time()
    due = (await store.deliveries.claim("d1", now, 20, 1))[0]
    retry = Attempt(due.id, 1, now, 12.5, 500, "HTTP 500", "retry", now + 1)
    assert await store.deliveries.record(retry, "d1")
    assert await store.deliveries.claim("d1", now + 0.5, 20, 1) == []
    again = (await store.deliveries.claim("d1", now + 1.1, 20, 1))[0]
    assert again.attempts == 1 and again.id == due.id
    assert await store.deliveries.record(Attempt(due.id, 2, now + 1.1, 3.0, 200, None, "delivered", None), "d1")
    delivery, attempts = await store.deliveries.for_task(task_id)
    assert delivery is not None and delivery["status"] == "delivered" and delivery["attempts"] == 2
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (2, 200)]


async def test_a_lost_lease_cannot_record(store: Store) -> None:
    await _delivery(store)
    now = time.time()
    due = (await store.deliveries.claim("d1", now, 0.01, 1))[0]
    await store.deliveries.claim("d2", now + 1, 20, 1)
    assert not await store.deliveries.record(Attempt(due.id, 1, now, 1.0, 200, None, "delivered", None), "d1")
