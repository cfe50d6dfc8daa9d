"""Workers' task claims on both engines: fair across accounts (in turns, oldest first within a turn, the leases an
account already holds counted), work-conserving, never one task to two workers, and read through their indexes."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import pytest

from reelgate.store.db import Conn
from reelgate.store.sql import Store
from reelgate.store.task_leases import candidates_sql, take_sql

from .factories import account, new_task, query_plan

T0 = time.time() - 10_000  # a task is due from T0 + its place in the queue of all tasks made so far
NOW = T0 + 5_000


async def queue(store: Store, owners: list[int]) -> list[str]:
    """One task for each account id in ``owners``, due in that order after every task made before; their ids."""
    ids = [(await store.tasks.create(new_task(acct), None))[0].id for acct in owners]

    async def due_in_order(c: Conn) -> None:
        row = await c.one("SELECT COUNT(*) AS n FROM tasks")
        first = int(row["n"]) - len(ids) if row is not None else 0
        for place, task_id in enumerate(ids, start=first):
            await c.run("UPDATE tasks SET run_after = :t WHERE id = :id", {"t": T0 + place, "id": task_id})

    await store.db.write(due_in_order)
    return ids


async def accounts(store: Store, *names: str) -> list[int]:
    return [await account(store, name, credits=100_000) for name in names]


async def claimed(store: Store, owner: str, now: float, slots: int, lease: float = 30) -> list[str]:
    return [c.id for c in await store.tasks.claim(owner, now, lease, slots)]


async def test_an_account_submitted_later_is_not_queued_behind_a_loud_one(store: Store) -> None:
    loud, quiet = await accounts(store, "loud", "quiet")
    loud_ids = await queue(store, [loud] * 50)
    (quiet_id,) = await queue(store, [quiet])  # due after all fifty of the loud account's
    taken = await store.tasks.claim("w1", NOW, 30, 2)
    assert [c.id for c in taken] == [loud_ids[0], quiet_id]  # one turn each, oldest first within the turn
    assert [c.account_id for c in taken] == [loud, quiet]


async def test_three_accounts_take_turns_oldest_first_within_a_turn(store: Store) -> None:
    a, b, c = await accounts(store, "a", "b", "c")
    ids = await queue(store, [c, a, a, a, b, b, c, b, c])
    # Turn 1: c's, a's and b's first (places 0, 1, 4); turn 2: their seconds (2, 5, 6); turn 3: their thirds.
    assert await claimed(store, "w1", NOW, 9) == [ids[i] for i in (0, 1, 4, 2, 5, 6, 3, 7, 8)]


async def test_turns_go_round_across_claims_of_one_slot(store: Store) -> None:
    a, b, c = await accounts(store, "a", "b", "c")
    ids = await queue(store, [a] * 4 + [b] * 4 + [c] * 4)
    # Each claim counts the leases the claims before it took, so one free slot at a time still goes round.
    taken = [(await claimed(store, f"w{n}", NOW, 1))[0] for n in range(6)]
    assert taken == [ids[i] for i in (0, 4, 8, 1, 5, 9)]


async def test_an_account_that_holds_the_workers_gives_way_to_one_that_holds_none(store: Store) -> None:
    loud, quiet = await accounts(store, "loud", "quiet")
    loud_ids = await queue(store, [loud] * 6)
    assert await claimed(store, "w1", NOW, 4) == loud_ids[:4]  # alone, it takes every free slot
    quiet_ids = await queue(store, [quiet] * 2)
    # Four of the loud account's tasks run: the quiet one's two come first, though the loud one's waited longer.
    assert await claimed(store, "w2", NOW + 1, 3) == [*quiet_ids, loud_ids[4]]


async def test_one_account_alone_gets_every_free_slot_oldest_first(store: Store) -> None:
    (only,) = await accounts(store, "only")
    ids = await queue(store, [only] * 12)
    assert await claimed(store, "w1", NOW, 8) == ids[:8]  # no per-account cap leaves a worker idle
    assert await claimed(store, "w2", NOW, 8) == ids[8:]
    assert await claimed(store, "w3", NOW, 8) == []


async def test_a_task_is_claimed_only_once_it_is_due(store: Store) -> None:
    a, b = await accounts(store, "a", "b")
    early, late = await queue(store, [a, b])
    await store.db.write(lambda c: c.run("UPDATE tasks SET run_after = :t WHERE id = :id", {"t": NOW + 50, "id": late}))
    assert await claimed(store, "w1", NOW, 5, lease=100) == [early]  # b's turn, but its task is not due yet
    assert await claimed(store, "w1", NOW + 50, 5) == [late]


async def test_an_expired_lease_is_taken_over_recorded_and_holds_no_turn(store: Store) -> None:
    a, b = await accounts(store, "a", "b")
    a1, a2, b1, b2 = await queue(store, [a, a, b, b])
    first = await store.tasks.claim("w1", NOW, 0.5, 2)
    assert [c.id for c in first] == [a1, b1] and not any(c.took_over for c in first)
    # w1's leases ran out (w1 died): its tasks are due again, and count as no account's running task.
    taken = await store.tasks.claim("w2", NOW + 1, 30, 4)
    assert [c.id for c in taken] == [a1, b1, a2, b2]
    assert [(c.took_over, c.attempts) for c in taken] == [(True, 2), (True, 2), (False, 1), (False, 1)]
    rows = await store.db.read(
        lambda c: c.all("SELECT task_id, owner, previous_owner, previous_lease_expires FROM task_claims ORDER BY id")
    )
    got = [(r["task_id"], r["owner"], r["previous_owner"], float(r["previous_lease_expires"])) for r in rows]
    assert got == [(a1, "w2", "w1", NOW + 0.5), (b1, "w2", "w1", NOW + 0.5)]
    assert await store.tasks.is_held(a1, "w2") and not await store.tasks.is_held(a1, "w1")


async def test_workers_claiming_at_once_never_take_the_same_task(store: Store, db_url: str) -> None:
    accts = await accounts(store, "a", "b", "c", "d")
    ids = await queue(store, [accts[i % 4] for i in range(60)])
    other = await Store.open(db_url, pool_size=4)  # a second worker process: connections of its own
    seen: list[str] = []
    try:
        for _ in range(40):
            batches = await asyncio.gather(*(s.tasks.claim(f"w{k}", NOW, 30, 3) for k, s in
                                             enumerate([store, other, store, other])))  # fmt: skip
            seen += [c.id for batch in batches for c in batch]
            if len(seen) >= len(ids):
                break
    finally:
        await other.close()
    assert sorted(seen) == sorted(ids)  # every task, each once
    attempts = await store.db.read(lambda c: c.all("SELECT DISTINCT attempts FROM tasks"))
    takeovers = await store.db.read(lambda c: c.one("SELECT COUNT(*) AS n FROM task_claims"))
    assert [int(r["attempts"]) for r in attempts] == [1] and takeovers is not None and int(takeovers["n"]) == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # row locks are PostgreSQL's
async def test_a_task_another_claim_holds_is_passed_over_without_waiting(store: Store, db_url: str) -> None:
    loud, quiet = await accounts(store, "loud", "quiet")
    loud_ids = await queue(store, [loud] * 5)
    (quiet_id,) = await queue(store, [quiet])
    holder = await asyncpg.connect(db_url)
    try:
        async with holder.transaction():  # another worker's claim, not committed yet, holds the loud one's oldest
            await holder.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", loud_ids[0])
            taken = await asyncio.wait_for(claimed(store, "w1", NOW, 2), 30)  # only a guard against hanging
            assert taken == [quiet_id, loud_ids[1]]  # the next candidates in turn
    finally:
        await holder.close()
    assert await claimed(store, "w2", NOW, 1) == [loud_ids[0]]


async def test_a_claim_reads_its_indexes_not_the_backlog(store: Store) -> None:
    # One tenant can have ten thousand tasks due, or open between two polls: the candidates come through the live
    # tasks by (account_id, run_after), one index step per account, and the live leases by expiry.
    plan = await query_plan(store, candidates_sql(store.db.dialect), {"now": NOW, "m": 8})
    assert "tasks_claimable" in plan and "tasks_leased" in plan, plan
    assert "tasks_due" not in plan and "SCAN tasks " not in f"{plan} " and "Seq Scan" not in plan, plan


async def test_the_take_finds_its_candidates_by_primary_key(store: Store) -> None:
    ids = ["t1", "t2"]
    params = {"me": "w", "exp": NOW + 30, "now": NOW, "n": 2,
              "ids": ids if store.db.dialect == "postgresql" else json.dumps(ids)}  # fmt: skip
    plan = await query_plan(store, take_sql(store.db.dialect, ""), params)
    assert "tasks_due" not in plan and "SCAN tasks " not in f"{plan} " and "Seq Scan" not in plan, plan
