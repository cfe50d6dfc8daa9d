"""Claiming tasks: the SQL of leases (a claim fair across accounts, heartbeat, progress, state, reschedule) and of
the due queue (a vendor's callback hint moves a waiting task up it)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from reelgate.store.db import Conn, Database, Row
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


# A claim reads through two indexes of live tasks (migration 0014), by (account_id, run_after) and by
# (lease_expires, account_id), and never the backlog: one tenant with ten thousand tasks due, or ten thousand open
# Kling tasks between polls, costs a claim what a tenant with three does. Its cost grows with the accounts that
# have live tasks (one index step each) and with the slots asked for, not with the tasks.
_DUE = "run_after <= :now AND (lease_expires IS NULL OR lease_expires < :now)"
# Accounts with live tasks, one index step each (a loose index scan), and how many of each one's tasks are under a
# live lease, held by any worker.
_ROOM = (
    "WITH RECURSIVE acct(id) AS (SELECT MIN(account_id) FROM tasks{claimable} WHERE {live} UNION ALL "
    "SELECT (SELECT MIN(account_id) FROM tasks{claimable} WHERE {live} AND account_id > acct.id) FROM acct "
    "WHERE acct.id IS NOT NULL), "
    "busy AS (SELECT account_id, COUNT(*) AS n FROM tasks{leased} WHERE {live} AND lease_expires >= :now "
    "GROUP BY account_id), "
    "room AS (SELECT acct.id AS account_id, COALESCE(busy.n, 0) AS n FROM acct LEFT JOIN busy "
    "ON busy.account_id = acct.id WHERE acct.id IS NOT NULL)"
)
# Each account's oldest few due tasks: PostgreSQL runs the subquery once per account (LATERAL); SQLite has no
# LATERAL, and runs a correlated IN once per account the same way. As many as a claim may take from one account:
# when only one account has tasks due, it gets every free slot.
_NEXT_FEW = "FROM tasks{claimable} WHERE account_id = room.account_id AND {live} AND {due} ORDER BY run_after LIMIT :m"
_PICKED = {
    "postgresql": "picked AS (SELECT t.id, t.account_id, t.run_after, t.lease_owner, t.lease_expires, room.n AS busy "
    f"FROM room CROSS JOIN LATERAL (SELECT id, account_id, run_after, lease_owner, lease_expires {_NEXT_FEW}) t)",
    "sqlite": "picked AS (SELECT t.id, t.account_id, t.run_after, t.lease_owner, t.lease_expires, room.n AS busy "
    f"FROM room JOIN tasks t ON t.id IN (SELECT id {_NEXT_FEW}))",
}
# SQLite plans without statistics: it would read the accounts and the leases through ``tasks_by_deadline``, whose
# status equality it rates above any range, i.e. read every live task. Named, the partial indexes are used or the
# statement fails, never quietly read the backlog. PostgreSQL's planner weighs them by their size.
_INDEXES = {
    "postgresql": {"claimable": "", "leased": ""},
    "sqlite": {"claimable": " INDEXED BY tasks_claimable", "leased": " INDEXED BY tasks_leased"},
}
# Due tasks in turns: every account's next task before any account's one after, oldest first within a turn. An
# account's turns start after the tasks it already has under lease, so a tenant whose thousand tasks hold every
# worker gives way to another's first task as soon as a slot frees, yet keeps every slot nobody else wants.
_CANDIDATES = (
    "{room}, {picked} SELECT id, lease_owner AS prev_owner, lease_expires AS prev_expires FROM (SELECT id, "
    "lease_owner, lease_expires, run_after, busy + ROW_NUMBER() OVER (PARTITION BY account_id "
    "ORDER BY run_after, id) AS turn FROM picked) ranked ORDER BY turn, run_after, id LIMIT :m"
)
_SET = "status = 'processing', lease_owner = :me, lease_expires = :exp, attempts = attempts + 1, updated_at = :now"
_CLAIMED = "id, account_id, model, provider, params, state, attempts, deadline"
# The take re-checks each candidate: on PostgreSQL the candidates were chosen without locks, and a task another
# worker holds (locked by a claim not yet committed, or leased by one that was) is passed over for the next
# candidate in turn order; the lease it ran out of is read under the lock. SQLite chose them in this write
# transaction. Both find each candidate by its primary key (see the comment on each).
_TAKE = {
    # A join on the candidates' list, not id = ANY(...): PostgreSQL without statistics yet combined ANY with another
    # index of the re-checked columns, and read every waiting task through it.
    "postgresql": f"UPDATE tasks SET {_SET} FROM (SELECT t.id AS taken, t.lease_owner AS prev_owner, t.lease_expires "
    "AS prev_expires FROM unnest(:ids::text[]) WITH ORDINALITY AS pick(id, turn) JOIN tasks t ON t.id = pick.id "
    f"WHERE {ACTIVE} AND {_DUE} ORDER BY pick.turn LIMIT :n{{lock}}) old WHERE tasks.id = old.taken "
    f"RETURNING tasks.{_CLAIMED}, prev_owner, prev_expires",
    # The unary + keeps SQLite on the primary key: it would otherwise read every due task through ``tasks_due``.
    "sqlite": f"UPDATE tasks SET {_SET} WHERE id IN (SELECT value FROM json_each(:ids)) AND +status IN ('pending', "
    f"'processing') AND +run_after <= :now AND (lease_expires IS NULL OR lease_expires < :now) RETURNING {_CLAIMED}",
}
# Candidates a claim reads per slot it fills. On PostgreSQL workers claiming in the same instant read the same
# candidates: with spares, one whose first choices went to two others still fills its slots. SQLite claims under
# the one write lock, so nobody takes a candidate from it.
_CHOICES_PER_SLOT = {"postgresql": 3, "sqlite": 1}


async def claim(db: Database, lock: str, owner: str, now: float, lease: float, limit: int) -> list[Claim]:
    """Up to ``limit`` due tasks leased to ``owner``, taken from the accounts in turns (see ``_CANDIDATES``).

    ``lock`` is the row lock a take holds on a task: FOR UPDATE SKIP LOCKED on PostgreSQL, where two workers never
    take the same task and neither waits for the other's; none on SQLite, whose claims take the write lock in turn."""
    if limit <= 0:
        return []
    postgres = db.dialect == "postgresql"
    candidates, take = candidates_sql(db.dialect), take_sql(db.dialect, lock)

    async def work(c: Conn) -> list[Claim]:
        chosen = await c.all(candidates, {"now": now, "m": limit * _CHOICES_PER_SLOT[db.dialect]})
        if not chosen:
            return []
        ids = [r["id"] for r in chosen]
        params = {
            "me": owner,
            "exp": now + lease,
            "now": now,
            "n": limit,
            "ids": ids if postgres else json.dumps(ids[:limit]),
        }
        taken = {r["id"]: r for r in await c.all(take, params)}
        # The lease each one ran out of: read under its row lock on PostgreSQL, in this transaction on SQLite.
        before = taken if postgres else {r["id"]: r for r in chosen}
        # In the candidates' order, the order of turns, which RETURNING does not keep.
        rows = [(taken[i], before[i]) for i in ids if i in taken]
        await _record_takeovers(c, owner, now, [prev for _, prev in rows if prev["prev_owner"] is not None])
        return [_claimed(row, prev["prev_owner"] is not None) for row, prev in rows]

    return await db.write(work)


@functools.cache  # built once per dialect: a worker claims at every poll
def candidates_sql(dialect: str) -> str:
    """The statement that chooses a claim's candidates, in turns, on ``dialect`` (:now, :m = how many)."""
    names = {"live": ACTIVE, "due": _DUE, **_INDEXES[dialect]}
    return _CANDIDATES.format(room=_ROOM.format(**names), picked=_PICKED[dialect].format(**names))


@functools.cache
def take_sql(dialect: str, lock: str) -> str:
    """The statement that leases a claim's candidates on ``dialect``, holding ``lock`` on each it takes."""
    return _TAKE[dialect].format(lock=lock)


async def _record_takeovers(c: Conn, owner: str, now: float, previous: list[Row]) -> None:
    # Only takeovers are recorded: a claim of a free task is the normal case (one per poll).
    if previous:
        await c.many(
            "INSERT INTO task_claims (task_id, owner, claimed_at, previous_owner, previous_lease_expires) "
            "VALUES (:id, :me, :now, :prev, :prev_exp)",
            [{"id": p["id"], "me": owner, "now": now, "prev": p["prev_owner"],
              "prev_exp": p["prev_expires"]} for p in previous],
        )  # fmt: skip


def _claimed(row: Row, took_over: bool) -> Claim:
    return Claim(row["id"], int(row["account_id"]), row["model"], row["provider"], json.loads(row["params"]),
                 json.loads(row["state"]), int(row["attempts"]), float(row["deadline"]), took_over)  # fmt: skip


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
