"""The deadline sweep fails overdue tasks nobody holds, and leaves a task whose lease is live to its worker."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness import make_settings
from reelgate.runtime import Runtime, build_runtime
from reelgate.store.sql import Store
from reelgate.store.tasks import Finish

from .factories import account, done, new_task

LEASE = 30.0


def _sweep(task_id: str, now: float) -> Finish:
    return Finish(task_id=task_id, status="failed", now=now, guard="expired", error_code="generation_timeout",
                  error_message="late", webhook_id=f"msg_{task_id}")  # fmt: skip


async def _overdue_and_claimed(store: Store) -> tuple[str, float]:
    """A task past its deadline, claimed by worker w1 at the time returned (its lease runs LEASE from then)."""
    acct = await account(store)
    rec, _ = await store.tasks.create(new_task(acct, deadline=-1), None)
    now = time.time()
    (claim,) = await store.tasks.claim("w1", now, LEASE, 1)
    assert claim.id == rec.id
    return rec.id, now


async def test_overdue_lists_no_task_whose_lease_is_live(store: Store) -> None:
    task_id, now = await _overdue_and_claimed(store)
    assert await store.tasks.overdue(now + 1) == []
    assert await store.tasks.overdue(now + LEASE) == []  # the lease still holds at its expiry instant
    assert await store.tasks.overdue(now + LEASE + 1) == [task_id]  # expired: its worker is gone


async def test_the_expired_guard_refuses_a_task_whose_lease_is_live(store: Store) -> None:
    task_id, now = await _overdue_and_claimed(store)
    assert await store.tasks.finish(_sweep(task_id, now + 1)) is None
    assert await store.tasks.finish(_sweep(task_id, now + LEASE)) is None
    task = await store.tasks.get(task_id)
    assert task is not None and task.status == "processing"
    # Its worker finishes it as usual, and is charged once; the sweep took nothing.
    finished = await store.tasks.finish(done(task_id, "w1"))
    assert finished is not None and finished.status == "completed"


async def test_the_sweep_takes_an_overdue_task_once_its_lease_has_expired(store: Store) -> None:
    task_id, now = await _overdue_and_claimed(store)
    swept = await store.tasks.finish(_sweep(task_id, now + LEASE + 1))
    assert swept is not None and swept.status == "failed" and swept.error_code == "generation_timeout"
    assert await store.tasks.finish(done(task_id, "w1")) is None  # the dead worker's late answer changes nothing


@pytest.fixture
async def runtime(tmp_path: Path, db_url: str) -> AsyncIterator[Runtime]:
    """The real service on each engine, without a worker of its own: the test plays the worker."""
    rt = build_runtime(make_settings(tmp_path, db_url, lease_seconds=LEASE), worker=False, dispatcher=False)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.close()


async def test_the_service_sweep_leaves_a_running_task_to_its_worker(runtime: Runtime) -> None:
    store = runtime.store
    acct = await account(store, credits=2000)
    running, _ = await store.tasks.create(new_task(acct, deadline=-1), None)
    orphan, _ = await store.tasks.create(new_task(acct, deadline=-1), None)
    assert [c.id for c in await store.tasks.claim("w1", time.time(), LEASE, 1)] == [running.id]
    # Claimed by a worker that has since died: its lease ran out a second ago.
    assert [c.id for c in await store.tasks.claim("w-dead", time.time(), -1.0, 1)] == [orphan.id]
    assert await runtime.service.fail_overdue() == 1
    orphaned, alive = await store.tasks.get(orphan.id), await store.tasks.get(running.id)
    assert orphaned is not None and orphaned.status == "failed" and orphaned.error_code == "generation_timeout"
    assert alive is not None and alive.status == "processing"
    assert await store.tasks.finish(done(running.id, "w1")) is not None
    b = (await store.accounts.view(acct)).balance
    assert (b.available, b.reserved, b.captured) == (1000, 0, 1000)  # the running one charged, the orphan refunded
