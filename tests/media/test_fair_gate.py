"""FairGate: work-conserving, fair across accounts, FIFO within one, and safe to cancel at any point; the media
pool's background work takes its processes through it."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from reelgate.media.fair import FairGate
from reelgate.media.pool import MediaPool


class Jobs:
    """Jobs that take a slot and hold it until the test lets them go, recording the order they got in."""

    def __init__(self, gate: FairGate) -> None:
        self.gate = gate
        self.started: list[str] = []
        self._go: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def _run(self, account: int, name: str) -> None:
        async with self.gate.slot(account):
            self.started.append(name)
            await self._go[name].wait()

    async def add(self, account: int, name: str) -> None:
        self._go[name] = asyncio.Event()
        self.tasks[name] = asyncio.create_task(self._run(account, name))
        await settle()

    async def finish(self, name: str) -> None:
        self._go[name].set()
        await self.tasks[name]
        await settle()


async def settle() -> None:
    for _ in range(5):  # let woken waiters run
        await asyncio.sleep(0)


async def test_a_lone_account_uses_every_slot() -> None:
    gate = FairGate(3)
    jobs = Jobs(gate)
    for i in range(5):
        await jobs.add(1, f"a{i}")
    assert jobs.started == ["a0", "a1", "a2"] and gate.running == 3 and gate.waiting == 2
    await jobs.finish("a1")
    assert jobs.started == ["a0", "a1", "a2", "a3"]  # no slot stays free while anyone waits


async def test_another_accounts_one_job_is_next_whatever_the_first_has_queued() -> None:
    gate = FairGate(2)
    jobs = Jobs(gate)
    for i in range(100):
        await jobs.add(1, f"a{i}")
    await jobs.add(2, "b0")
    await jobs.finish("a0")
    assert jobs.started == ["a0", "a1", "b0"]  # not behind a2..a99
    await jobs.finish("a1")
    await jobs.finish("b0")
    assert jobs.started[3:] == ["a2", "a3"]
    for name in [f"a{i}" for i in range(2, 100)]:
        await jobs.finish(name)
    assert jobs.started == ["a0", "a1", "b0", *[f"a{i}" for i in range(2, 100)]]  # FIFO within the account
    assert gate.running == gate.waiting == gate.accounts == 0


async def test_waiting_accounts_take_turns_and_each_keeps_its_order() -> None:
    gate = FairGate(1)
    jobs = Jobs(gate)
    await jobs.add(9, "x")  # holds the only slot
    for name in ("a0", "a1", "a2"):
        await jobs.add(1, name)
    await jobs.add(2, "b0")
    await jobs.add(2, "b1")
    await jobs.add(3, "c0")
    for name in ("x", "a0", "b0", "c0", "a1", "b1", "a2"):
        await jobs.finish(name)
    assert jobs.started == ["x", "a0", "b0", "c0", "a1", "b1", "a2"]
    assert gate.accounts == 0


async def test_a_cancelled_waiter_takes_no_slot_and_blocks_nobody() -> None:
    gate = FairGate(1)
    jobs = Jobs(gate)
    await jobs.add(1, "a0")
    await jobs.add(2, "b0")
    await jobs.add(3, "c0")
    jobs.tasks["b0"].cancel()
    await settle()
    assert gate.waiting == 1 and gate.accounts == 2  # account 2 is forgotten at once
    await jobs.finish("a0")
    assert jobs.started == ["a0", "c0"]
    await jobs.finish("c0")
    assert gate.running == gate.waiting == gate.accounts == 0
    with pytest.raises(asyncio.CancelledError):
        await jobs.tasks["b0"]


async def test_a_waiter_cancelled_after_it_was_given_a_slot_hands_it_on() -> None:
    gate = FairGate(1)
    await gate.acquire(1)
    given = asyncio.create_task(gate.acquire(2))
    after = asyncio.create_task(gate.acquire(3))
    await settle()
    gate.release(1)  # the slot goes to account 2's waiter, which has not run yet ...
    given.cancel()  # ... and is cancelled before it does
    await after  # the slot went on to account 3
    with pytest.raises(asyncio.CancelledError):
        await given
    assert gate.running == 1 and gate.accounts == 1
    gate.release(3)
    assert gate.running == gate.accounts == 0


async def test_a_timed_out_wait_leaves_nothing_behind() -> None:
    gate = FairGate(1)
    await gate.acquire(1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(gate.acquire(2), 0.01)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await gate.acquire(2)
    assert gate.waiting == 0 and gate.accounts == 1
    gate.release(1)
    assert gate.running == gate.accounts == 0
    await gate.acquire(2)  # the slot is free for anyone
    gate.release(2)


async def test_many_accounts_with_random_cancellations_never_exceed_the_slots_or_leak_one() -> None:
    gate = FairGate(3)
    rng = random.Random(7)
    holding = 0
    most = 0

    async def job(account: int) -> None:
        nonlocal holding, most
        async with gate.slot(account):
            holding += 1
            most = max(most, holding)
            try:
                for _ in range(rng.randint(0, 3)):
                    await asyncio.sleep(0)
            finally:
                holding -= 1

    tasks = [asyncio.create_task(job(rng.randint(1, 6))) for _ in range(300)]
    for _ in range(200):
        await asyncio.sleep(0)
        rng.choice(tasks).cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(o is None or isinstance(o, asyncio.CancelledError) for o in outcomes)
    assert 0 < sum(isinstance(o, asyncio.CancelledError) for o in outcomes) < len(tasks)
    assert most == 3 and holding == 0
    assert gate.running == gate.waiting == gate.accounts == 0


async def test_the_media_pools_background_work_is_shared_fairly_between_accounts() -> None:
    """Account 1 queues four jobs for two processes, then account 2 one: account 2's starts as the first process
    frees, ahead of account 1's last two (first come, first served it would finish after both)."""
    pool = MediaPool(processes=2, per_account=4, waiting_bytes=0)
    finished: list[str] = []

    async def job(account: int, name: str) -> None:
        await pool.run(account, time.sleep, 0.4, patient=True)
        finished.append(name)

    try:
        tasks = [asyncio.create_task(job(1, f"a{i}")) for i in range(4)]
        await settle()
        tasks.append(asyncio.create_task(job(2, "b0")))
        await asyncio.gather(*tasks)
    finally:
        await pool.aclose()
    assert finished.index("b0") < finished.index("a3")
