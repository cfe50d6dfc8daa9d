"""Stored-media rows on both engines: what a Base64 submit reads first, and which files nothing needs any more."""

from __future__ import annotations

import time

from reelgate.domain import new_webhook_id
from reelgate.store.sql import Store
from reelgate.store.tasks import Finish, Idempotency

from .factories import account, done, new_task


async def test_precheck_reads_the_balance_the_cap_and_a_used_key(store: Store) -> None:
    acct = await account(store, credits=2500)
    task = new_task(acct)
    await store.tasks.create(task, Idempotency(api_key_id=1, key="k1", body_hash="h1"))
    fresh = await store.uploads.precheck(acct, 1, "k2")
    assert (fresh.available, fresh.in_flight, fresh.used_hash, fresh.used_task) == (1500, 1, None, None)
    used = await store.uploads.precheck(acct, 1, "k1")
    assert (used.used_hash, used.used_task) == ("h1", task.id)
    assert (await store.uploads.precheck(acct, 2, "k1")).used_hash is None  # keys are scoped to their API key
    assert (await store.uploads.precheck(acct, 1, None)).available == 1500
    assert (await store.uploads.precheck(999, 1, None)).available == 0


async def _task_in(store: Store, acct: int, state: str) -> str:
    """A task in ``state``: pending, failed (cancelled), or completed with an element live or deleted."""
    task = new_task(acct)
    await store.tasks.create(task, None)
    if state == "failed":
        await store.tasks.finish(Finish(task_id=task.id, status="failed", now=time.time(), guard="cancel",
                                        account_id=acct, error_code="request_cancelled", error_message="x",
                                        webhook_id=new_webhook_id()))  # fmt: skip
    elif state.startswith("element"):
        await store.tasks.claim("w1", time.time(), 30, 10)
        element_id = str(int(time.time() * 1e6))
        await store.tasks.finish(done(task.id, "w1", element={"element_id": element_id, "provider": "local"}))
        if state == "element deleted":
            assert await store.elements.mark_deleted(element_id, acct, time.time()) is not None
    return task.id


async def test_garbage_is_what_no_pending_task_or_live_element_needs(store: Store) -> None:
    acct = await account(store, credits=10_000)
    owners = {state: await _task_in(store, acct, state) for state in
              ("pending", "failed", "element live", "element deleted")}  # fmt: skip
    owners["never made"] = "task-unified-1757169743-nevermad"  # a submit refused after it registered its files
    for state, task_id in owners.items():
        await store.uploads.register([f"{state.replace(' ', '-')}-{i}.jpg" for i in range(2)], acct, task_id)
    later = time.time() + 1
    assert sorted(await store.uploads.garbage(later)) == sorted(
        f"{state}-{i}.jpg" for state in ("failed", "element-deleted", "never-made") for i in range(2)
    )
    assert len(await store.uploads.garbage(later, limit=3)) == 3  # in batches
    # Files registered less than the grace period ago may belong to a submit or a run still under way.
    assert await store.uploads.garbage(time.time() - 3600) == []


async def test_forget_and_of_task(store: Store) -> None:
    acct = await account(store)
    await store.uploads.register(["a.jpg", "b.png"], acct, "t1")
    await store.uploads.register(["c.mp4"], acct, "t2")
    await store.uploads.forget(["a.jpg", "c.mp4", "never-there.jpg"])
    assert await store.uploads.of_task("t1") == ["b.png"] and await store.uploads.of_task("t2") == []
