"""Claiming tasks: the SQL of leases (claim, heartbeat, progress, state, reschedule) and of the due queue (a
vendor's callback hint moves a waiting task up it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reelgate.store.db import Conn, Database
from reelgate.store.task_rows import ACTIVE


@dataclass(frozen=True)
class Claim:
    """A task a worker now holds the lease on."""

    id: str
    account_id: int
    model: str
    provider: str
    params: dict[str, Any]
    state: dict[str, Any]
    attempts: int
    deadline: float
    took_over: bool


async def claim(db: Database, lock: str, owner: str, now: float, lease: float, limit: int) -> list[Claim]:
    async def work(c: Conn) -> list[Claim]:
        rows = await c.all(
            f"SELECT id, lease_owner, lease_expires FROM tasks WHERE {ACTIVE} AND run_after <= :now "
            f"AND (lease_expires IS NULL OR lease_expires < :now) ORDER BY run_after LIMIT :n{lock}",
            {"now": now, "n": limit},
        )
        claims = []
        for cand in rows:
            row = await c.one(
                "UPDATE tasks SET status = 'processing', lease_owner = :me, lease_expires = :exp, "
                "attempts = attempts + 1, updated_at = :now WHERE id = :id AND "
                f"{ACTIVE} RETURNING id, account_id, model, provider, params, state, attempts, deadline",
                {"me": owner, "exp": now + lease, "now": now, "id": cand["id"]},
            )
            if row is not None and cand["lease_owner"] is not None:
                # Only takeovers are recorded: a claim of a free task is the normal case (one per poll).
                await c.run(
                    "INSERT INTO task_claims (task_id, owner, claimed_at, previous_owner, previous_lease_expires) "
                    "VALUES (:id, :me, :now, :prev, :prev_exp)",
                    {"id": cand["id"], "me": owner, "now": now, "prev": cand["lease_owner"],
                     "prev_exp": cand["lease_expires"]},
                )  # fmt: skip
            if row is not None:
                claims.append(
                    Claim(row["id"], int(row["account_id"]), row["model"], row["provider"],
                          json.loads(row["params"]), json.loads(row["state"]), int(row["attempts"]),
                          float(row["deadline"]), cand["lease_owner"] is not None)
                )  # fmt: skip
        return claims

    return await db.write(work)


async def heartbeat(db: Database, task_id: str, owner: str, expires: float) -> bool:
    sql = f"UPDATE tasks SET lease_expires = :exp WHERE id = :id AND lease_owner = :me AND {ACTIVE}"
    return bool(await db.write(lambda c: c.run(sql, {"exp": expires, "id": task_id, "me": owner})))


async def progress(db: Database, task_id: str, owner: str, percent: int, now: float) -> bool:
    sql = (
        "UPDATE tasks SET progress = CASE WHEN progress < :p THEN :p ELSE progress END, updated_at = :now "
        "WHERE id = :id AND lease_owner = :me AND status = 'processing'"
    )
    params = {"p": percent, "now": now, "id": task_id, "me": owner}
    return bool(await db.write(lambda c: c.run(sql, params)))


async def save_state(db: Database, task_id: str, owner: str, state: dict[str, Any], cancellable: bool | None) -> bool:
    sql = (
        "UPDATE tasks SET state = :s, cancellable = COALESCE(:c, cancellable) "
        "WHERE id = :id AND lease_owner = :me AND status = 'processing'"
    )
    c_val = None if cancellable is None else int(cancellable)
    params = {"s": json.dumps(state), "c": c_val, "id": task_id, "me": owner}
    return bool(await db.write(lambda c: c.run(sql, params)))


async def reschedule(db: Database, task_id: str, owner: str, run_after: float, state: dict[str, Any]) -> bool:
    sql = (
        "UPDATE tasks SET lease_owner = NULL, lease_expires = NULL, run_after = :t, state = :s "
        "WHERE id = :id AND lease_owner = :me AND status = 'processing'"
    )
    params = {"t": run_after, "s": json.dumps(state), "id": task_id, "me": owner}
    return bool(await db.write(lambda c: c.run(sql, params)))


async def poll_soon(db: Database, task_id: str, now: float, provider: str) -> bool:
    """Make an active, unleased task of ``provider`` that waits due now; False when nothing changed.

    A vendor's callback is only a hint: only the schedule moves, and the run that follows asks the vendor itself,
    so a forged or stale callback can at worst cause one early poll.
    """
    sql = (
        "UPDATE tasks SET run_after = :now WHERE id = :id AND provider = :provider "
        "AND status IN ('pending', 'processing') AND lease_owner IS NULL AND run_after > :now"
    )
    return bool(await db.write(lambda c: c.run(sql, {"id": task_id, "now": now, "provider": provider})))


async def is_held(db: Database, task_id: str, owner: str) -> bool:
    sql = f"SELECT 1 FROM tasks WHERE id = :id AND lease_owner = :me AND {ACTIVE}"
    return await db.read(lambda c: c.one(sql, {"id": task_id, "me": owner})) is not None


async def overdue(db: Database, now: float, limit: int) -> list[str]:
    rows = await db.read(
        lambda c: c.all(
            f"SELECT id FROM tasks WHERE {ACTIVE} AND deadline < :now "
            "AND (lease_expires IS NULL OR lease_expires < :now) ORDER BY deadline LIMIT :n",
            {"now": now, "n": limit},
        )
    )
    return [r["id"] for r in rows]


async def queue_stats(db: Database, now: float) -> tuple[int, float]:
    row = await db.read(
        lambda c: c.one(
            f"SELECT COUNT(*) AS n, MIN(run_after) AS oldest FROM tasks WHERE {ACTIVE} AND run_after <= :now "
            "AND (lease_expires IS NULL OR lease_expires < :now)",
            {"now": now},
        )
    )
    if row is None or not row["n"]:
        return 0, 0.0
    return int(row["n"]), max(0.0, now - float(row["oldest"]))


async def next_due(db: Database) -> float | None:
    row = await db.read(
        lambda c: c.one(f"SELECT MIN(COALESCE(lease_expires, run_after)) AS t FROM tasks WHERE {ACTIVE}")
    )
    return None if row is None or row["t"] is None else float(row["t"])
