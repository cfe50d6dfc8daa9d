"""CreateBatches: a burst becomes one batch; batches in flight up to the limit; what a batch did not make is made
alone, in order."""

from __future__ import annotations

import asyncio

from reelgate.store.create_batches import CreateBatches


class Recorder:
    """A create_all that waits for ``release`` and makes every item but those in ``refuse``."""

    def __init__(self, refuse: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.alone: list[int] = []
        self.release = asyncio.Event()
        self.refuse = refuse

    async def create_all(self, items: list[int]) -> list[str | Exception | None]:
        self.batches.append(items)
        await self.release.wait()
        return [None if i in self.refuse else f"made {i}" for i in items]

    async def create_one(self, item: int) -> str:
        self.alone.append(item)
        return f"alone {item}"


async def _two_bursts(in_flight: int) -> tuple[list[list[int]], list[str]]:
    """Two bursts, the second while the first's batch runs; the batches started by then, and every answer."""
    rec = Recorder()
    batches = CreateBatches(rec.create_all, rec.create_one, in_flight=in_flight)
    first = [asyncio.create_task(batches.create(i)) for i in range(3)]
    await asyncio.sleep(0.01)  # the first burst's batch is running (waiting for release)
    second = [asyncio.create_task(batches.create(i)) for i in range(3, 5)]
    await asyncio.sleep(0.01)
    started = [list(b) for b in rec.batches]
    rec.release.set()
    answers = await asyncio.gather(*first, *second)
    assert rec.batches == [[0, 1, 2], [3, 4]]
    return started, answers


async def test_one_in_flight_keeps_the_next_burst_waiting_until_the_first_is_done() -> None:
    started, answers = await _two_bursts(in_flight=1)
    assert started == [[0, 1, 2]]
    assert answers == [f"made {i}" for i in range(5)]


async def test_more_in_flight_lets_the_next_burst_start_while_the_first_runs() -> None:
    started, answers = await _two_bursts(in_flight=4)
    assert started == [[0, 1, 2], [3, 4]]
    assert answers == [f"made {i}" for i in range(5)]


async def test_what_a_batch_did_not_make_is_made_alone_in_order() -> None:
    rec = Recorder(refuse=frozenset({1, 2}))
    rec.release.set()
    batches = CreateBatches(rec.create_all, rec.create_one)
    answers = await asyncio.gather(*(batches.create(i) for i in range(4)))
    assert answers == ["made 0", "alone 1", "alone 2", "made 3"] and rec.alone == [1, 2]
