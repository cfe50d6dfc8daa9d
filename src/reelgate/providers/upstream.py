"""Upstream slots: a vendor account's cap on tasks in flight, shared by every process that runs its tasks.

The store implements ``UpstreamSlots`` over the database (store/upstream_slots.py), so the cap holds across worker
processes and machines; ``LocalSlots`` is the same rule in one process, for a provider built without a store (a
configuration check, a test). A provider takes a slot right before an upstream create and gives it back once the
upstream task reaches a final status; a slot of a task that ended some other way is swept by the store.
"""

from __future__ import annotations

from typing import Protocol


class UpstreamSlots(Protocol):
    async def acquire(self, channel: str, task_id: str, cap: int) -> bool:
        """Take a slot on ``channel`` for ``task_id`` unless ``cap`` are taken (idempotent per task)."""

    async def release(self, task_id: str) -> None:
        """Give the task's slot back (nothing of it is in flight upstream any more)."""


class LocalSlots:
    """``UpstreamSlots`` in this process's memory: right for one process only."""

    def __init__(self) -> None:
        self._held: dict[str, str] = {}  # task id -> channel

    async def acquire(self, channel: str, task_id: str, cap: int) -> bool:
        if self._held.get(task_id) == channel:
            return True
        self._held.pop(task_id, None)
        if sum(1 for held in self._held.values() if held == channel) >= cap:
            return False
        self._held[task_id] = channel
        return True

    async def release(self, task_id: str) -> None:
        self._held.pop(task_id, None)

    def in_flight(self, channel: str) -> int:
        return sum(1 for held in self._held.values() if held == channel)
