"""Process heartbeats: which workers and dispatchers run, where, since when, and how much work each holds.

Each running worker or dispatcher keeps one row (migration 0012), keyed by its lease-owner name, so a row names the
same process as ``tasks.lease_owner`` and ``task_claims.owner``. A beat writes the whole row (an upsert: the first
beat creates it, a row pruned meanwhile comes back); a clean exit deletes it; a killed process leaves it to go
silent, and every beat deletes rows silent for longer than the prune age, so the table holds the processes running
now plus the ones that stopped recently.
"""

from __future__ import annotations

from dataclasses import dataclass

from reelgate.store.db import Conn, Database

_BEAT = (
    "INSERT INTO process_heartbeats (id, kind, host, pid, started, last_seen, concurrency, in_hand) "
    "VALUES (:id, :kind, :host, :pid, :started, :last_seen, :concurrency, :in_hand) "
    "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, concurrency = excluded.concurrency, "
    "in_hand = excluded.in_hand"
)
_PRUNE = "DELETE FROM process_heartbeats WHERE last_seen < :before"
_LIST = (
    "SELECT id, kind, host, pid, started, last_seen, concurrency, in_hand FROM process_heartbeats "
    "ORDER BY kind, last_seen DESC, id LIMIT :n"
)
MAX_LISTED = 1000  # far more processes than any deployment runs; a bound for a table nobody else caps


@dataclass(frozen=True)
class ProcessBeat:
    """One process's heartbeat row: ``id`` is its lease-owner name, times are Unix seconds."""

    id: str
    kind: str  # worker | dispatcher
    host: str
    pid: int
    started: float
    last_seen: float
    concurrency: int  # tasks (or callback attempts) it runs at once at most
    in_hand: int  # tasks (or callback attempts) it holds as of last_seen


class ProcessStore:
    """Heartbeat rows of workers and dispatchers, on either engine."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def beat(self, beat: ProcessBeat, prune_before: float) -> None:
        """Record the beat (creating the row if needed) and delete every row silent since before ``prune_before``."""

        async def work(c: Conn) -> None:
            await c.run(_BEAT, vars(beat))
            await c.run(_PRUNE, {"before": prune_before})

        await self.db.write(work)

    async def forget(self, process_id: str) -> None:
        """Delete the process's row (it stopped cleanly)."""
        await self.db.write(lambda c: c.run("DELETE FROM process_heartbeats WHERE id = :id", {"id": process_id}))

    async def listed(self) -> list[ProcessBeat]:
        """Every row (pruned ones aside), by kind, most recently seen first."""
        rows = await self.db.read(lambda c: c.all(_LIST, {"n": MAX_LISTED}))
        return [
            ProcessBeat(id=str(r["id"]), kind=str(r["kind"]), host=str(r["host"]), pid=int(r["pid"]),
                        started=float(r["started"]), last_seen=float(r["last_seen"]),
                        concurrency=int(r["concurrency"]), in_hand=int(r["in_hand"]))
            for r in rows
        ]  # fmt: skip
