"""A fair gate for CPU-heavy media work: N slots shared by accounts, a freed slot going to the account that waits
and holds the fewest, round-robin among equals.

A FIFO semaphore lets a tenant who queues a hundred jobs hold every slot while another tenant's one job waits behind
all of them. Here waiters are grouped by account: a freed slot goes to the oldest waiter of the waiting account that
holds the fewest slots (ties in rotation order, and an account served goes to the back), so a newcomer waits for
one slot to free, not for the queue ahead of it. The gate is work-conserving: no slot stays free while anyone waits,
and a lone tenant may use every slot. Nothing is kept about an account that has no job waiting or running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator


class FairGate:
    """``async with gate.slot(account_id): ...`` runs at most ``slots`` bodies at once, fairly across accounts."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self._free = self.slots
        # Waiting accounts in rotation order, each with its waiters oldest first.
        self._waiting: OrderedDict[int, deque[asyncio.Future[None]]] = OrderedDict()
        self._running: dict[int, int] = {}  # slots each account holds

    @property
    def running(self) -> int:
        return self.slots - self._free

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    @property
    def accounts(self) -> int:
        """Accounts the gate keeps anything about (those with a job waiting or running)."""
        return len(self._waiting.keys() | self._running.keys())

    @contextlib.asynccontextmanager
    async def slot(self, account: int) -> AsyncIterator[None]:
        await self.acquire(account)
        try:
            yield
        finally:
            self.release(account)

    async def acquire(self, account: int) -> None:
        """Wait for a slot for ``account``; cancelled (or timed out) while waiting, it takes none and blocks nobody."""
        if self._free and not self._waiting:
            self._take(account)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(account, deque()).append(future)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(account)  # granted, but cancelled before it could run: the slot goes to the next one
            else:
                self._forget(account, future)
            raise

    def release(self, account: int) -> None:
        """Give back a slot ``account`` holds (once per acquire that returned)."""
        held = self._running[account] - 1
        if held:
            self._running[account] = held
        else:
            del self._running[account]
        self._free += 1
        self._grant()

    def _take(self, account: int) -> None:
        self._free -= 1
        self._running[account] = self._running.get(account, 0) + 1

    def _grant(self) -> None:
        while self._free and self._waiting:
            account = self._next_account()
            queue = self._waiting[account]
            future = queue.popleft()
            if queue:
                self._waiting.move_to_end(account)  # served: to the back of the rotation
            else:
                del self._waiting[account]
            if future.cancelled():  # its waiter has not run its clean-up yet; it is out of the queue already
                continue
            self._take(account)
            future.set_result(None)

    def _next_account(self) -> int:
        """The waiting account holding the fewest slots, the first in rotation order among equals."""
        best, fewest = -1, -1
        for account in self._waiting:
            held = self._running.get(account, 0)
            if fewest < 0 or held < fewest:
                best, fewest = account, held
                if not held:
                    break
        return best

    def _forget(self, account: int, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(account)
        if queue is None:
            return
        with contextlib.suppress(ValueError):  # already taken out by _grant
            queue.remove(future)
        if not queue:
            del self._waiting[account]
