"""Callback delivery rows (the transactional outbox) and their attempt log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reelgate.store.db import Conn, Database, Row


@dataclass(frozen=True)
class DueDelivery:
    id: str
    task_id: str
    account_id: int
    url: str
    attempts: int
    took_over: bool
    created: float  # the terminal commit that wrote this delivery


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    attempt: int
    started_at: float
    latency_ms: float
    status_code: int | None
    error: str | None
    outcome: Literal["delivered", "retry", "dead"]
    next_attempt: float | None


class DeliveryStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgresql" else ""

    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[DueDelivery]:
        async def work(c: Conn) -> list[DueDelivery]:
            rows = await c.all(
                "SELECT id, lease_owner FROM deliveries WHERE status = 'pending' AND next_attempt <= :now "
                f"AND (lease_expires IS NULL OR lease_expires < :now) ORDER BY next_attempt LIMIT :n{self._lock}",
                {"now": now, "n": limit},
            )
            out = []
            for cand in rows:
                row = await c.one(
                    "UPDATE deliveries SET lease_owner = :me, lease_expires = :exp WHERE id = :id "
                    "AND status = 'pending' RETURNING id, task_id, account_id, url, attempts, created",
                    {"me": owner, "exp": now + lease, "id": cand["id"]},
                )
                if row is not None:
                    out.append(
                        DueDelivery(row["id"], row["task_id"], int(row["account_id"]), row["url"],
                                    int(row["attempts"]), cand["lease_owner"] is not None, float(row["created"]))
                    )  # fmt: skip
            return out

        return await self.db.write(work)

    async def record(self, a: Attempt, owner: str) -> bool:
        """Log one attempt and move the delivery on; False if the lease was lost meanwhile."""

        async def work(c: Conn) -> bool:
            moved = await c.run(
                "UPDATE deliveries SET attempts = :n, status = :st, next_attempt = COALESCE(:next, next_attempt), "
                "lease_owner = NULL, lease_expires = NULL, finished_at = :fin WHERE id = :id AND lease_owner = :me",
                {"n": a.attempt, "st": "pending" if a.outcome == "retry" else a.outcome, "next": a.next_attempt,
                 "fin": None if a.outcome == "retry" else a.started_at, "id": a.delivery_id, "me": owner},
            )  # fmt: skip
            if not moved:
                return False
            await c.run(
                "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, status_code, error, latency_ms, "
                "next_attempt) VALUES (:d, :n, :s, :code, :err, :lat, :next)",
                {"d": a.delivery_id, "n": a.attempt, "s": a.started_at, "code": a.status_code, "err": a.error,
                 "lat": a.latency_ms, "next": a.next_attempt},
            )  # fmt: skip
            return True

        return await self.db.write(work)

    async def for_task(self, task_id: str) -> tuple[Row | None, list[Row]]:
        async def work(c: Conn) -> tuple[Row | None, list[Row]]:
            d = await c.one(
                "SELECT id, url, status, attempts, next_attempt, created, finished_at FROM deliveries "
                "WHERE task_id = :t",
                {"t": task_id},
            )
            if d is None:
                return None, []
            rows = await c.all(
                "SELECT attempt, started_at, status_code, error, latency_ms, next_attempt FROM delivery_attempts "
                "WHERE delivery_id = :d ORDER BY attempt",
                {"d": d["id"]},
            )
            return d, rows

        return await self.db.read(work)

    async def next_due(self) -> float | None:
        row = await self.db.read(
            lambda c: c.one(
                "SELECT MIN(COALESCE(lease_expires, next_attempt)) AS t FROM deliveries WHERE status = 'pending'"
            )
        )
        return None if row is None or row["t"] is None else float(row["t"])

    async def counts(self) -> dict[str, int]:
        rows = await self.db.read(lambda c: c.all("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status"))
        return {str(r["status"]): int(r["n"]) for r in rows}
