"""Submits created together on PostgreSQL: one network exchange for a burst instead of one round trip each.

Inside a group commit each PostgreSQL submit is one statement (reserve + insert task + insert ledger entry) and
one round trip, so a burst of 64 submits would wait for 64 round trips one after another. Here the submits that
arrive until a transaction is free to take them form one batch, sent as one pipelined ``fetchmany`` of that
statement, in order, inside the group commit; each answer tells whether its task was created. The others were
refused by their reservation and learn why (402 or 429) from their account. If the batch fails as a whole (a
constraint no submit should ever hit), each submit is retried alone, so one bad submit never fails the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from reelgate.errors import StoreUnavailable
from reelgate.store.db import Conn, Database

I = TypeVar("I")  # noqa: E741 - one item to create
R = TypeVar("R")  # what its creator gets back (or, from create_all, the error to raise in its request)


class CreateBatches(Generic[I, R]):
    """Collects the creates of one loop turn; ``create_all`` runs them in one write, ``create_one`` alone."""

    def __init__(
        self,
        db: Database,
        create_all: Callable[[Conn, list[I]], Awaitable[list[R | Exception]]],
        create_one: Callable[[I], Awaitable[R]],
    ) -> None:
        self.db = db
        self._create_all = create_all
        self._create_one = create_one
        self._open: list[tuple[I, asyncio.Future[R]]] | None = None  # the batch no transaction has taken yet
        self._running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    async def create(self, item: I) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        if self._open is None:
            self._open = []
            task = asyncio.create_task(self._run(self._open))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        self._open.append((item, fut))
        return await fut

    async def _run(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        def work(c: Conn) -> Awaitable[list[R | Exception]]:
            # The batch stays open, gathering creates, until a transaction takes it: while the committers are
            # busy, a burst keeps joining one batch instead of queueing as many small ones.
            if self._open is batch:
                self._open = None
            return self._create_all(c, [item for item, _ in batch])

        outcomes: list[R | Exception] | None
        try:
            outcomes = await self.db.write(work)
        except StoreUnavailable as exc:
            outcomes = [exc] * len(batch)
        except Exception:
            outcomes = None
        # Closed here too: a write that failed before its work ran must not leave later creates joining a batch
        # that is already answered.
        if self._open is batch:
            self._open = None
        if outcomes is None:
            outcomes = list(await asyncio.gather(*(self._alone(item) for item, _ in batch)))
        for (_, fut), outcome in zip(batch, outcomes, strict=True):
            if fut.done():
                continue
            if isinstance(outcome, Exception):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)

    async def _alone(self, item: I) -> R | Exception:
        try:
            return await self._create_one(item)
        except Exception as exc:
            return exc
