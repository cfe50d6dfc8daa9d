"""Indexes that the hot queries rely on, on both engines: the plan uses them, and writes that need none skip them."""

from __future__ import annotations

import time

from reelgate.store.sql import Store
from reelgate.store.tasks import Finish

from .factories import account, new_task, query_plan

RECENT = (
    "SELECT finished_at - created_at AS d FROM tasks WHERE model = :m AND status = 'completed' "
    "AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT :n"
)


async def _index_sql(store: Store, index: str) -> str:
    if store.db.dialect == "sqlite":
        sql = "SELECT sql AS d FROM sqlite_master WHERE type = 'index' AND name = :i"
    else:
        sql = "SELECT indexdef AS d FROM pg_indexes WHERE indexname = :i"
    row = await store.db.read(lambda c: c.one(sql, {"i": index}))
    assert row is not None, f"index {index} is missing"
    return str(row["d"])


async def test_recent_durations_read_only_completed_tasks_from_their_own_index(store: Store) -> None:
    plan = await query_plan(store, RECENT, {"m": "kling-custom-element", "n": 200})
    assert "tasks_completed_by_model" in plan


async def test_the_index_holds_completed_tasks_only_so_a_submit_adds_no_entry(store: Store) -> None:
    assert "status = 'completed'" in (await _index_sql(store, "tasks_completed_by_model")).replace("'::text", "'")


async def test_recent_durations_are_those_of_completed_tasks(store: Store) -> None:
    acct = await account(store, credits=5000)
    made = [(await store.tasks.create(new_task(acct), None))[0] for _ in range(3)]
    claimed = await store.tasks.claim("w", time.time(), 30, 5)
    assert len(claimed) == 3
    first = made[0].id
    done = Finish(task_id=first, status="completed", now=time.time(), guard="owner", owner="w", result={"ok": 1})
    assert await store.tasks.finish(done) is not None
    durations = await store.tasks.recent_durations(made[0].model)
    assert len(durations) == 1
