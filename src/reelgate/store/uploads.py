"""Stored media rows (who owns each file) and the one read a Base64 submit makes before any media work."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from reelgate.errors import InsufficientQuota, RateLimited
from reelgate.store.db import Conn, Database

# Files nobody needs: their task was never made (a refused submit, or one cut off before its commit), failed, or
# made an element that was deleted. Completed tasks keep theirs (their element, or a result, links them).
_GARBAGE = (
    "SELECT a.name FROM assets a LEFT JOIN tasks t ON t.id = a.task_id LEFT JOIN elements e ON e.task_id = a.task_id "
    "WHERE a.created < :before AND (t.id IS NULL OR t.status = 'failed' OR e.deleted_at IS NOT NULL) "
    "ORDER BY a.created LIMIT :n"
)


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

    async def register(self, names: Sequence[str], account_id: int, task_id: str) -> None:
        """Record files before they are written (write-before-call): a file on disk always has an owner row."""
        now = time.time()
        rows = [{"n": n, "a": account_id, "t": task_id, "c": now} for n in names]
        if rows:
            sql = "INSERT INTO assets (name, account_id, task_id, created) VALUES (:n, :a, :t, :c)"
            await self.db.write(lambda c: c.many(sql, rows))

    async def forget(self, names: Sequence[str]) -> None:
        if names:
            await self.db.write(lambda c: c.many("DELETE FROM assets WHERE name = :n", [{"n": n} for n in names]))

    async def of_task(self, task_id: str) -> list[str]:
        rows = await self.db.read(lambda c: c.all("SELECT name FROM assets WHERE task_id = :t", {"t": task_id}))
        return [str(r["name"]) for r in rows]

    async def garbage(self, before: float, limit: int = 500) -> list[str]:
        """Files registered before ``before`` that nothing needs any more (see _GARBAGE), oldest first."""
        rows = await self.db.read(lambda c: c.all(_GARBAGE, {"before": before, "n": limit}))
        return [str(r["name"]) for r in rows]
