"""Upstream slots: a channel's cap on tasks in flight holds across connections and processes, on both engines."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid

from reelgate.store.sql import Store

from .factories import account, done, new_task


def _channel() -> str:
    # PostgreSQL's session database is shared by the tests: a channel of its own keeps each test's rows apart.
    return f"kling:test-{uuid.uuid4().hex[:8]}"


async def _tasks(store: Store, n: int) -> list[str]:
    acct = await account(store, credits=100_000)
    return [(await store.tasks.create(new_task(acct, cap=10_000), None))[0].id for _ in range(n)]


async def test_cap_refuses_past_the_limit_and_a_release_frees_a_place(store: Store) -> None:
    ch = _channel()
    a, b, c = await _tasks(store, 3)
    slots = store.upstream_slots
    assert await slots.acquire(ch, a, 2) and await slots.acquire(ch, b, 2)
    assert not await slots.acquire(ch, c, 2)
    assert await slots.acquire(ch, a, 2)  # a task that holds one keeps it: a retried create after a crash
    assert await slots.in_flight(ch) == 2
    await slots.release(a)
    assert await slots.acquire(ch, c, 2)
    assert await slots.in_flight(ch) == 2 and await slots.holder_channel(c) == ch


async def test_a_task_that_moves_channel_gives_up_its_old_slot(store: Store) -> None:
    one, two = _channel(), _channel()
    (a,) = await _tasks(store, 1)
    assert await store.upstream_slots.acquire(one, a, 1)
    assert await store.upstream_slots.acquire(two, a, 1)
    assert await store.upstream_slots.in_flight(one) == 0 and await store.upstream_slots.in_flight(two) == 1


async def test_slots_of_ended_tasks_are_swept_when_the_channel_is_full(store: Store) -> None:
    ch = _channel()
    a, b, c = await _tasks(store, 3)
    slots = store.upstream_slots
    assert await slots.acquire(ch, a, 2) and await slots.acquire(ch, b, 2)
    claims = await store.tasks.claim("w", time.time(), 30, 10)
    assert a in {cl.id for cl in claims}
    await store.tasks.finish(done(a, "w", ok=False))  # e.g. its worker died and the deadline failed it
    assert await slots.acquire(ch, c, 2)  # a's row was swept: the cap counts live tasks only
    assert await slots.holder_channel(a) is None
    await slots.release(b)
    await slots.release(c)
    ghost = f"tsk_gone_{uuid.uuid4().hex}"
    assert await slots.acquire(ch, ghost, 2)  # a row whose task does not exist is swept too
    assert await slots.sweep() >= 1 and await slots.holder_channel(ghost) is None


async def test_two_connections_racing_never_exceed_the_cap(db_url: str) -> None:
    """Two Store instances (two connections, as two processes would have) take and give back slots at random."""
    ch, cap = _channel(), 2
    first, second = await Store.open(db_url, pool_size=4), await Store.open(db_url, pool_size=4)
    try:
        ids = await _tasks(first, 24)
        holding = 0
        peak = 0

        async def one(store: Store, task_id: str) -> None:
            nonlocal holding, peak
            while not await store.upstream_slots.acquire(ch, task_id, cap):
                await asyncio.sleep(0.002)
            holding += 1
            peak = max(peak, holding)
            assert await first.upstream_slots.in_flight(ch) <= cap
            await asyncio.sleep(0.005)
            holding -= 1
            await store.upstream_slots.release(task_id)

        await asyncio.gather(*(one(first if i % 2 else second, t) for i, t in enumerate(ids)))
        assert peak == cap and await first.upstream_slots.in_flight(ch) == 0
    finally:
        await first.close()
        await second.close()


def _racer(db_url: str, ch: str, ids: list[str], cap: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def main() -> list[tuple[float, float]]:
        store = await Store.open(db_url, pool_size=2)
        spans = []
        try:
            for task_id in ids:
                while not await store.upstream_slots.acquire(ch, task_id, cap):
                    await asyncio.sleep(0.002)
                start = time.time()  # after the acquire committed: the slot is ours from here
                await asyncio.sleep(0.01)
                end = time.time()  # before the release: ours up to here
                await store.upstream_slots.release(task_id)
                spans.append((start, end))
        finally:
            await store.close()
        return spans

    out.put(asyncio.run(main()))


async def test_processes_racing_never_exceed_the_cap(db_url: str) -> None:
    """Four processes, each working its tasks one after another against a cap of 2: at most 2 hold at once."""
    ch, cap = _channel(), 2
    store = await Store.open(db_url, pool_size=2)
    try:
        ids = await _tasks(store, 24)
    finally:
        await store.close()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(db_url, ch, ids[i::4], cap, out)) for i in range(4)]
    for p in procs:
        p.start()
    spans = [span for _ in procs for span in await asyncio.to_thread(out.get, True, 60)]
    for p in procs:
        p.join(10)
    assert len(spans) == 24
    for start, _ in spans:
        overlapping = sum(1 for s, e in spans if s <= start < e)
        assert overlapping <= cap


async def test_a_freed_place_goes_to_the_task_that_waited_longest(store: Store) -> None:
    ch = _channel()
    a, b, c = await _tasks(store, 3)
    slots = store.upstream_slots
    assert await slots.acquire(ch, a, 1, now=1.0)
    assert not await slots.acquire(ch, b, 1, now=2.0)  # in line first
    assert not await slots.acquire(ch, c, 1, now=3.0)
    assert await slots.waiting(ch) == 2 and await slots.in_flight(ch) == 1
    await slots.release(a)
    assert not await slots.acquire(ch, c, 1, now=4.0)  # asks first, but b waited longer
    assert await slots.acquire(ch, b, 1, now=5.0)
    await slots.release(b)
    assert await slots.acquire(ch, c, 1, now=6.0)
    assert await slots.waiting(ch) == 0


async def test_a_waiting_task_that_ended_does_not_hold_up_the_line(store: Store) -> None:
    ch = _channel()
    a, b, c = await _tasks(store, 3)
    slots = store.upstream_slots
    assert await slots.acquire(ch, a, 1, now=1.0)
    assert not await slots.acquire(ch, b, 1, now=2.0)
    assert not await slots.acquire(ch, c, 1, now=3.0)
    await slots.release(a)
    claims = await store.tasks.claim("w", time.time(), 30, 10)
    assert b in {cl.id for cl in claims}
    await store.tasks.finish(done(b, "w", ok=False))  # cancelled or failed while it waited
    assert await slots.acquire(ch, c, 1, now=4.0)
