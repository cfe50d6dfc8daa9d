"""Kling's callback as a hint: make a waiting Kling task due now, so it is polled at once instead of after back-off."""

from __future__ import annotations

from reelgate.store.db import Database


async def poll_soon(db: Database, task_id: str, now: float) -> bool:
    """Set ``run_after`` to now for an active, unleased Kling task that is waiting; False when nothing changed.

    Only the schedule moves: the poll that follows reads the status from Kling itself, so a forged or stale
    callback can at worst cause one early poll.
    """
    sql = (
        "UPDATE tasks SET run_after = :now WHERE id = :id AND provider = 'kling' "
        "AND status IN ('pending', 'processing') AND lease_owner IS NULL AND run_after > :now"
    )
    return bool(await db.write(lambda c: c.run(sql, {"id": task_id, "now": now})))
