"""Callback delivery rows (the transactional outbox) and their attempt log."""

from __future__ import annotations

import time
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


# Every statement below reads what it needs through two indexes (migration 0007): (status, account_id, next_attempt)
# and (status, lease_expires, account_id). None reads the backlog: a slow receiver can leave one account tens of
# thousands due, and a claim must cost the same as when it has three.
_FREE = "status = 'pending' AND (lease_expires IS NULL OR lease_expires < :now)"
# Accounts with anything pending, one index step each (a loose index scan), and the slots each has free: its live
# leases, across every dispatcher, count against its cap.
_ROOM = (
    "WITH RECURSIVE acct(id) AS (SELECT MIN(account_id) FROM deliveries WHERE status = 'pending' UNION ALL "
    "SELECT (SELECT MIN(account_id) FROM deliveries WHERE status = 'pending' AND account_id > acct.id) FROM acct "
    "WHERE acct.id IS NOT NULL), "
    "busy AS (SELECT account_id, COUNT(*) AS n FROM deliveries WHERE status = 'pending' AND lease_expires >= :now "
    "GROUP BY account_id), "
    "room AS (SELECT acct.id AS account_id, COALESCE(busy.n, 0) AS n FROM acct LEFT JOIN busy "
    "ON busy.account_id = acct.id WHERE acct.id IS NOT NULL AND COALESCE(busy.n, 0) < :cap)"
)
# Each account's oldest few due deliveries: PostgreSQL runs the subquery once per account (LATERAL); SQLite has no
# LATERAL, and runs a correlated IN once per account the same way.
_NEXT_FEW = (
    f"FROM deliveries WHERE account_id = room.account_id AND next_attempt <= :now AND {_FREE} "
    "ORDER BY next_attempt LIMIT :cap"
)
_PICKED = {
    "postgresql": "picked AS (SELECT d.id, d.account_id, d.lease_owner, d.next_attempt, room.n AS busy FROM room "
    f"CROSS JOIN LATERAL (SELECT id, account_id, lease_owner, next_attempt {_NEXT_FEW}) d)",
    "sqlite": "picked AS (SELECT d.id, d.account_id, d.lease_owner, d.next_attempt, room.n AS busy FROM room "
    f"JOIN deliveries d ON d.id IN (SELECT id {_NEXT_FEW}))",
}
# Due deliveries in turns: every account's next free slot before any account's one after, oldest first within a
# turn, and none past an account's cap. One slow tenant with hundreds due cannot queue ahead of another's first.
_CANDIDATES = (
    "{room}, {picked} SELECT id, lease_owner FROM (SELECT id, lease_owner, next_attempt, "
    "busy + ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY next_attempt, id) AS slot FROM picked) ranked "
    "WHERE slot <= :cap ORDER BY slot, next_attempt, id LIMIT :n"
)
# ``attempts`` as the dispatcher counts them: within the current round (a resend starts a new one, migration 0009).
_TAKE = (
    "UPDATE deliveries SET lease_owner = :me, lease_expires = :exp WHERE {target} "
    "RETURNING id, task_id, account_id, url, attempts - round_base AS attempts, created"
)
NEXT_DUE = (
    f"{_ROOM} SELECT MIN(t) AS t FROM (SELECT MIN(lease_expires) AS t FROM deliveries WHERE status = 'pending' "
    "AND lease_expires >= :now UNION ALL SELECT (SELECT MIN(next_attempt) FROM deliveries "
    f"WHERE account_id = room.account_id AND {_FREE}) AS t FROM room) soonest"
)


# A delivery as its task's owner may see it (the delivery log, a resend's answer); ``in_flight`` is whether a
# dispatcher holds a live lease on it, i.e. an attempt is under way.
_SHOWN = (
    "id, task_id, url, status, attempts, next_attempt, created, finished_at, resends, "
    "CASE WHEN lease_expires >= :now THEN 1 ELSE 0 END AS in_flight"
)

_WITH_ATTEMPTS = (
    "SELECT d.id, d.task_id, d.url, d.status, d.attempts, d.next_attempt, d.created, d.finished_at, d.resends, "
    "CASE WHEN d.lease_expires >= :now THEN 1 ELSE 0 END AS in_flight, a.attempt AS a_attempt, "
    "a.started_at AS a_started_at, a.status_code AS a_status_code, a.error AS a_error, a.latency_ms AS a_latency_ms, "
    "a.next_attempt AS a_next_attempt FROM deliveries d LEFT JOIN delivery_attempts a ON a.delivery_id = d.id "
    "WHERE d.task_id = :t ORDER BY a.attempt"
)


@dataclass(frozen=True)
class Resend:
    """What a resend did: ``resent`` is True when this call started a new round."""

    resent: bool
    delivery: Row | None


class DeliveryStore:
    """Claims are fair across accounts and capped per account. On SQLite the claim runs under the one write lock,
    so the cap is exact across processes. On PostgreSQL candidates are chosen without locks and each is taken with
    SKIP LOCKED: dispatchers claiming in the same instant may each fill an account's cap once (at most cap x
    dispatchers in flight); the next claim sees every lease and adds none until the account is under its cap."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.candidates_sql = _CANDIDATES.format(room=_ROOM, picked=_PICKED[db.dialect])
        target = f"id = :id AND {_FREE}"
        if db.dialect == "postgresql":
            # Another dispatcher's claim not yet committed holds the row: skip it rather than wait on it.
            target = f"id = (SELECT id FROM deliveries WHERE id = :id AND {_FREE} FOR UPDATE SKIP LOCKED)"
        self._take = _TAKE.format(target=target)

    async def claim(self, owner: str, now: float, lease: float, limit: int, *, per_account: int) -> list[DueDelivery]:
        """Up to ``limit`` due deliveries leased to ``owner``, no account above ``per_account`` leases in all."""

        async def work(c: Conn) -> list[DueDelivery]:
            rows = await c.all(self.candidates_sql, {"now": now, "n": limit, "cap": per_account})
            out = []
            for cand in rows:
                row = await c.one(self._take, {"me": owner, "exp": now + lease, "id": cand["id"], "now": now})
                if row is not None:
                    out.append(
                        DueDelivery(row["id"], row["task_id"], int(row["account_id"]), row["url"],
                                    int(row["attempts"]), cand["lease_owner"] is not None, float(row["created"]))
                    )  # fmt: skip
            return out

        return await self.db.write(work)

    async def record(self, a: Attempt, owner: str) -> bool:
        """Log one attempt and move the delivery on; False if the lease was lost meanwhile. ``a.attempt`` counts
        within the round, as claims do; the row and the log count every attempt since the first."""

        async def work(c: Conn) -> bool:
            moved = await c.one(
                "UPDATE deliveries SET attempts = round_base + :n, status = :st, "
                "next_attempt = COALESCE(:next, next_attempt), lease_owner = NULL, lease_expires = NULL, "
                "finished_at = :fin WHERE id = :id AND lease_owner = :me RETURNING attempts",
                {"n": a.attempt, "st": "pending" if a.outcome == "retry" else a.outcome, "next": a.next_attempt,
                 "fin": None if a.outcome == "retry" else a.started_at, "id": a.delivery_id, "me": owner},
            )  # fmt: skip
            if moved is None:
                return False
            await c.run(
                "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, status_code, error, latency_ms, "
                "next_attempt) VALUES (:d, :n, :s, :code, :err, :lat, :next)",
                {"d": a.delivery_id, "n": int(moved["attempts"]), "s": a.started_at, "code": a.status_code,
                 "err": a.error, "lat": a.latency_ms, "next": a.next_attempt},
            )  # fmt: skip
            return True

        return await self.db.write(work)

    async def for_task(self, task_id: str, now: float | None = None) -> tuple[Row | None, list[Row]]:
        """The task's delivery and its attempts, oldest first; ``now`` decides whether a lease is live."""
        now = time.time() if now is None else now

        async def work(c: Conn) -> tuple[Row | None, list[Row]]:
            # One statement, so one snapshot: two would let PostgreSQL show a delivery still pending beside the
            # attempt that delivered it (read committed), when the dispatcher commits between them.
            rows = await c.all(_WITH_ATTEMPTS, {"t": task_id, "now": now})
            if not rows:
                return None, []
            # keys(): iterating an sqlite3.Row yields its values.
            delivery: Row = {k: rows[0][k] for k in rows[0].keys() if not k.startswith("a_")}  # noqa: SIM118
            attempts: list[Row] = [
                {k[2:]: r[k] for k in r.keys() if k.startswith("a_")}  # noqa: SIM118
                for r in rows
                if r["a_attempt"] is not None
            ]
            return delivery, attempts

        return await self.db.read(work)

    async def resend(self, task_id: str, now: float) -> Resend:
        """Send a dead delivery again, at once, as a new round of attempts (the same webhook-id, retried 1/2/4 s
        again); any other delivery is left as it is. ``resent`` says whether this call did it, and ``delivery``
        is the row as it now stands (None when the task has no delivery). Conditional, so of two resends at the
        same moment one starts the round and the other sees it pending."""

        async def work(c: Conn) -> Resend:
            row = await c.one(
                "UPDATE deliveries SET status = 'pending', next_attempt = :now, round_base = attempts, "
                "resends = resends + 1, finished_at = NULL, lease_owner = NULL, "
                f"lease_expires = NULL WHERE task_id = :t AND status = 'dead' RETURNING {_SHOWN}",
                {"t": task_id, "now": now},
            )
            if row is not None:
                return Resend(True, row)
            now_row = await c.one(f"SELECT {_SHOWN} FROM deliveries WHERE task_id = :t", {"t": task_id, "now": now})
            return Resend(False, now_row)

        return await self.db.write(work)

    async def next_due(self, now: float, per_account: int) -> float | None:
        """The earliest time a claim could take something: a due delivery of an account under its cap, or a lease
        running out; deliveries of an account at its cap wait for one of its attempts to end."""
        row = await self.db.read(lambda c: c.one(NEXT_DUE, {"now": now, "cap": per_account}))
        return None if row is None or row["t"] is None else float(row["t"])

    async def counts(self) -> dict[str, int]:
        rows = await self.db.read(lambda c: c.all("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status"))
        return {str(r["status"]): int(r["n"]) for r in rows}
