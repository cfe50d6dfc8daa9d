"""Stored media rows (who owns each object, when a result expires), the lifecycle queries that decide which objects
go, and the one read a Base64 submit makes before any media work.

An object is needed while its owner is: the element its task made (until deleted), the task itself while pending
or processing, a completed task's results until they expire (``expires_at``; its other media until the task is
``results_before`` old). Besides, a live task of the same account that names the object's ``/assets`` URL in its
request holds it: ``release`` decides in one transaction holding the account's row, the row every task creation
of that account updates, so a task made meanwhile is either seen (the object stays) or made after the decision.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from reelgate.assets import Garbage
from reelgate.domain import ACTIVE_STATUSES
from reelgate.errors import InsufficientQuota, RateLimited
from reelgate.store.db import Conn, Database

_JOINED = "FROM assets a LEFT JOIN tasks t ON t.id = a.task_id LEFT JOIN elements e ON e.task_id = a.task_id"
# Objects nothing needs any more: released already (their removal was cut short), their task never made (a refused
# submit, or one cut off before its commit) or failed, their element deleted, an expired result, or another medium
# of a completed task that made no element (a video task's input copies) once ``results_before`` passed.
_DEAD = (
    "(a.released_at IS NOT NULL OR t.id IS NULL OR t.status = 'failed' OR e.deleted_at IS NOT NULL "
    "OR a.expires_at <= :now "
    "OR (t.status = 'completed' AND e.id IS NULL AND a.expires_at IS NULL AND t.finished_at < :results_before))"
)
# Oldest first, from a keyset cursor, so objects a live task holds never stall the batches behind them.
_GARBAGE = (
    f"SELECT a.name, a.account_id, a.created {_JOINED} WHERE a.created < :before AND {_DEAD} "
    "AND (a.created > :after_created OR (a.created = :after_created AND a.name > :after_name)) "
    "ORDER BY a.created, a.name LIMIT :n"
)
_LIVE = ", ".join(f"'{status}'" for status in ACTIVE_STATUSES)
# The requests of an account's live tasks that name a stored object by its URL.
_HOLDERS = f"SELECT params FROM tasks WHERE account_id = :a AND status IN ({_LIVE}) AND params LIKE '%/assets/%'"


def _marks(names: Sequence[str]) -> tuple[str, dict[str, str]]:
    params = {f"n{i}": name for i, name in enumerate(names)}
    return ", ".join(f":{key}" for key in params), params


@dataclass(frozen=True)
class Precheck:
    """The account's balance and in-flight count, and what its key's Idempotency-Key was used for, if it was."""

    available: int
    in_flight: int
    used_hash: str | None = None  # the body hash the key was first used with
    used_task: str | None = None

    def check(self, price: int, cap: int) -> None:
        """Refuse as the reservation would (tasks.py): too few credits (402), else the in-flight cap (429)."""
        if self.available < price:
            raise InsufficientQuota(
                f"not enough credits: this call needs {price / 1000:g} and the account has "
                f"{self.available / 1000:g} available",
                fallback_suggestion="ask the operator to grant credits (reelgate credits grant)",
            )
        if self.in_flight >= cap:
            raise RateLimited(f"this account already has {self.in_flight} tasks in flight (limit {cap})",
                              code="too_many_tasks_in_flight", headers={"Retry-After": "5"})  # fmt: skip


class UploadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def precheck(self, account_id: int, api_key_id: int, key: str | None) -> Precheck:
        async def work(c: Conn) -> Precheck:
            acct = await c.one("SELECT available, in_flight FROM accounts WHERE id = :a", {"a": account_id})
            used = None
            if key is not None:
                used = await c.one("SELECT body_hash, task_id FROM idempotency WHERE api_key_id = :k AND key = :key",
                                   {"k": api_key_id, "key": key})  # fmt: skip
            available, in_flight = (int(acct["available"]), int(acct["in_flight"])) if acct else (0, 0)
            if used is None:
                return Precheck(available, in_flight)
            return Precheck(available, in_flight, str(used["body_hash"]), str(used["task_id"]))

        return await self.db.read(work)

    async def register(self, names: Sequence[str], account_id: int, task_id: str, *,
                       expires_at: float | None = None) -> None:  # fmt: skip
        """Record objects before they are written (write-before-call): a stored object always has an owner row."""
        now = time.time()
        rows = [{"n": n, "a": account_id, "t": task_id, "c": now, "x": expires_at} for n in names]
        if rows:
            sql = "INSERT INTO assets (name, account_id, task_id, created, expires_at) VALUES (:n, :a, :t, :c, :x)"
            await self.db.write(lambda c: c.many(sql, rows))

    async def forget(self, names: Sequence[str]) -> None:
        if names:
            await self.db.write(lambda c: c.many("DELETE FROM assets WHERE name = :n", [{"n": n} for n in names]))

    async def of_task(self, task_id: str) -> list[str]:
        rows = await self.db.read(lambda c: c.all("SELECT name FROM assets WHERE task_id = :t", {"t": task_id}))
        return [str(r["name"]) for r in rows]

    async def garbage(self, before: float, limit: int = 500) -> list[str]:
        """Names of objects registered before ``before`` that nothing needs (see _DEAD), oldest first."""
        return [g.name for g in await self.garbage_after(before, now=time.time(), limit=limit)]

    async def garbage_after(self, before: float, *, now: float, results_before: float = 0.0,
                            after: Garbage | None = None, limit: int = 500) -> list[Garbage]:  # fmt: skip
        """Objects registered before ``before`` (a grace period: a submit or a run may still be writing younger
        ones) that nothing seems to need at ``now``, oldest first, after ``after``."""
        start = (after.created, after.name) if after else (-1.0, "")
        params = {"before": before, "now": now, "results_before": results_before, "n": limit,
                  "after_created": start[0], "after_name": start[1]}  # fmt: skip
        rows = await self.db.read(lambda c: c.all(_GARBAGE, params))
        return [Garbage(str(r["name"]), int(r["account_id"]), float(r["created"])) for r in rows]

    async def release(self, account_id: int, names: Sequence[str], *, now: float,
                      results_before: float = 0.0) -> list[str]:  # fmt: skip
        """Of ``names`` (objects of ``account_id``), mark released those nothing needs at ``now`` and no live task of
        the account names, and return them (with any released before): the caller removes their objects, then
        forgets them. One transaction holding the account's row, as every task creation of the account does."""
        if not names:
            return []
        marks, named = _marks(names)

        async def work(c: Conn) -> list[str]:
            if self.db.dialect == "postgresql":
                await c.one("SELECT id FROM accounts WHERE id = :a FOR UPDATE", {"a": account_id})
            # Read after the lock: a task the account made meanwhile has committed, and is seen.
            dead = await c.all(f"SELECT a.name {_JOINED} WHERE a.account_id = :a AND a.name IN ({marks}) AND {_DEAD}",
                               {"a": account_id, "now": now, "results_before": results_before, **named})  # fmt: skip
            requests = [str(r["params"]) for r in await c.all(_HOLDERS, {"a": account_id})]
            free = [str(r["name"]) for r in dead if not any(f"/assets/{r['name']}" in p for p in requests)]
            if free:
                marked, which = _marks(free)
                await c.run(f"UPDATE assets SET released_at = :now WHERE released_at IS NULL AND name IN ({marked})",
                            {"now": now, **which})  # fmt: skip
            return free

        return await self.db.write(work)
