"""Upstream slots: a cap on a vendor account's tasks in flight that holds across every process and machine.

A vendor may count concurrency per account (Kling answers 1303 past its limit), so the cap cannot be a counter in
one process. Each upstream task in flight has a row (its channel, our task id, when it was taken, ``held`` 1). A
place is taken right before the upstream create, in one transaction that counts the channel's rows: on SQLite the
write lock serializes it with every other writer; on PostgreSQL a transaction-scoped advisory lock on the channel
does, so two processes never both see "one place left". A task that finds no place free waits in line (a row with
``held`` 0, dated when it started waiting), and a freed place goes to the longest-waiting task first: without the
line, tasks re-asking on a growing back-off would lose every race to newer ones and could wait until their deadline.
A row goes when the upstream task reaches a final status (the provider releases it) or its task ends (rows of tasks
that are no longer pending or processing are swept by the next taker that finds the channel full or someone ahead of
it, and by ``sweep``), so nothing leaks when a worker dies.
"""

from __future__ import annotations

import time

from reelgate.store.db import Conn, Database
from reelgate.store.task_rows import ACTIVE

_MINE = "SELECT channel, held, acquired_at FROM upstream_slots WHERE task_id = :t"
_QUEUE = "INSERT INTO upstream_slots (task_id, channel, acquired_at, held) VALUES (:t, :ch, :now, 0)"
# The first key of PostgreSQL's two-key advisory locks taken here, so they cannot collide with anyone else's.
LOCK_SPACE = 200_008


def _stale_clause() -> str:
    """Rows whose task is gone or no longer pending/processing: their upstream task is not ours to count."""
    return f"NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = upstream_slots.task_id AND t.{ACTIVE})"


class UpstreamSlotStore:
    """Slots per channel (any string naming a vendor account, e.g. ``kling:sg-main``), keyed by task id."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._postgres = db.dialect == "postgresql"

    async def acquire(self, channel: str, task_id: str, cap: int, now: float | None = None) -> bool:
        """Take a place on ``channel`` for ``task_id``: True when the task holds one (now or already), False when it
        must ask again later (it keeps its place in line).

        Idempotent: a task that holds a place on the channel keeps it (a retried create after a crash); one with a
        row on another channel gives that up (it moved: nothing of it is in flight there).
        """
        taken = time.time() if now is None else now

        async def work(c: Conn) -> bool:
            if self._postgres:
                await c.one("SELECT pg_advisory_xact_lock(:space, hashtext(:ch))", {"space": LOCK_SPACE, "ch": channel})
            mine = await c.one(_MINE, {"t": task_id})
            if mine is not None and mine["channel"] == channel and mine["held"]:
                return True
            if mine is not None and mine["channel"] != channel:
                await c.run("DELETE FROM upstream_slots WHERE task_id = :t", {"t": task_id})
                mine = None
            if mine is None:
                await c.run(_QUEUE, {"t": task_id, "ch": channel, "now": taken})
                since = taken
            else:
                since = float(mine["acquired_at"])
            if not await _my_turn(c, channel, task_id, since, cap):
                # Full, or others waited longer: first drop the rows of tasks that ended (a killed worker, a
                # deadline, a cancel), then look again.
                await c.run(f"DELETE FROM upstream_slots WHERE channel = :ch AND {_stale_clause()}", {"ch": channel})
                if not await _my_turn(c, channel, task_id, since, cap):
                    return False
            await c.run("UPDATE upstream_slots SET held = 1, acquired_at = :now WHERE task_id = :t",
                        {"t": task_id, "now": taken})  # fmt: skip
            return True

        return await self.db.write(work)

    async def release(self, task_id: str) -> None:
        """Give the task's slot back (its upstream task reached a final status, or was never made)."""
        await self.db.write(lambda c: c.run("DELETE FROM upstream_slots WHERE task_id = :t", {"t": task_id}))

    async def in_flight(self, channel: str) -> int:
        """How many places the channel's tasks hold now (ended tasks' rows included until swept)."""
        return await self.db.read(lambda c: _held(c, channel))

    async def waiting(self, channel: str) -> int:
        """How many tasks wait in line for a place on the channel."""
        sql = "SELECT COUNT(*) AS n FROM upstream_slots WHERE channel = :ch AND held = 0"
        row = await self.db.read(lambda c: c.one(sql, {"ch": channel}))
        return 0 if row is None else int(row["n"])

    async def holder_channel(self, task_id: str) -> str | None:
        row = await self.db.read(
            lambda c: c.one("SELECT channel FROM upstream_slots WHERE task_id = :t", {"t": task_id})
        )
        return None if row is None else str(row["channel"])

    async def sweep(self) -> int:
        """Remove every row whose task ended; how many went."""
        sql = f"DELETE FROM upstream_slots WHERE {_stale_clause()}"
        return await self.db.write(lambda c: c.run(sql))


async def _held(c: Conn, channel: str) -> int:
    row = await c.one("SELECT COUNT(*) AS n FROM upstream_slots WHERE channel = :ch AND held = 1", {"ch": channel})
    return 0 if row is None else int(row["n"])


async def _my_turn(c: Conn, channel: str, task_id: str, since: float, cap: int) -> bool:
    """A place is free for this task: fewer waited longer than there are free places."""
    free = cap - await _held(c, channel)
    if free <= 0:
        return False
    row = await c.one(
        "SELECT COUNT(*) AS n FROM upstream_slots WHERE channel = :ch AND held = 0 "
        "AND (acquired_at < :since OR (acquired_at = :since AND task_id < :t))",
        {"ch": channel, "since": since, "t": task_id},
    )
    return (0 if row is None else int(row["n"])) < free
