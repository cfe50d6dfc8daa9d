"""What the web console reads across every account: the overview's counts, task search, a task's whole history,
the element gallery and each channel's slots.

Each read is bounded by an index and a LIMIT, so a page costs the same with ten thousand tasks as with ten:
tasks by submit time through the primary key (a task id starts with its submit second, ``task-unified-<seconds>-``,
so an id range is a time range), finished tasks through ``tasks_finished`` (migration 0013), one task's rows
through their task-id indexes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reelgate.domain import TASK_ID_PREFIX
from reelgate.store.db import Conn, Database, Row
from reelgate.store.task_rows import ACTIVE


def id_at(seconds: float) -> str:
    """The smallest task id submitted at or after ``seconds`` (ids sort by their submit second)."""
    return f"{TASK_ID_PREFIX}{int(seconds)}-"


@dataclass(frozen=True)
class TaskFilter:
    """A task search; empty strings and None mean "any". Times are Unix seconds (submitted in [since, until))."""

    account_id: int | None = None
    status: str = ""
    model: str = ""
    error_code: str = ""
    since: float | None = None
    until: float | None = None
    before: str = ""  # a previous page's last task id
    dead_callback: bool = False  # only tasks whose callback delivery gave up


@dataclass(frozen=True)
class TaskHistory:
    """Everything recorded about one task besides its row: lease takeovers, ledger entries, the callback delivery
    and its attempts, the upstream slot it holds, the element it made and its provider state."""

    state: dict[str, Any]
    lease_owner: str | None
    lease_expires: float | None
    run_after: float
    cancellable: bool
    claims: list[Row]
    ledger: list[Row]
    delivery: Row | None
    attempts: list[Row]
    slot: Row | None
    element_id: str | None


@dataclass(frozen=True)
class ElementFilter:
    account_id: int | None = None
    provider: str = ""
    before: tuple[float, str] | None = None  # a previous page's last (created_at, id)


_TASK_COLS = (
    "t.id, a.name AS account, t.model, t.provider, t.status, t.progress, t.error_code, t.created_at, "
    "t.finished_at, t.price, t.charged"
)
_ELEMENT_COLS = "e.id, e.account_id, a.name AS account, e.task_id, e.provider, e.data, e.created_at"


class ConsoleReads:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Whole buckets since the window's start; PostgreSQL's CAST rounds, SQLite's truncates (the value is >= 0).
        self._floor = "FLOOR" if db.dialect == "postgresql" else "CAST"

    def _bucket(self, column: str) -> str:
        if self._floor == "FLOOR":
            return f"CAST(FLOOR(({column} - :since) / :w) AS INTEGER)"
        return f"CAST(({column} - :since) / :w AS INTEGER)"

    # --- overview -----------------------------------------------------------------------------------------------

    async def submitted_by_bucket(self, since: float, until: float, width: float) -> list[Row]:
        """Tasks submitted in [since, until) per bucket of ``width`` seconds, model and current status."""
        sql = (
            f"SELECT {self._bucket('created_at')} AS b, model, status, COUNT(*) AS n FROM tasks "
            "WHERE id >= :lo AND id < :hi GROUP BY 1, model, status"
        )
        params = {"since": float(since), "w": float(width), "lo": id_at(since), "hi": id_at(until + 1)}
        return await self.db.read(lambda c: c.all(sql, params))

    async def completion_times(self, since: float, limit: int = 5000) -> list[Row]:
        """Model and seconds from submit to finish of the latest ``limit`` tasks completed since ``since``."""
        sql = (
            "SELECT model, finished_at - created_at AS d FROM tasks WHERE finished_at >= :since "
            "AND status = 'completed' ORDER BY finished_at DESC LIMIT :n"
        )
        return await self.db.read(lambda c: c.all(sql, {"since": float(since), "n": limit}))

    async def failures_by_code(self, since: float) -> list[Row]:
        sql = (
            "SELECT error_code, COUNT(*) AS n FROM tasks WHERE finished_at >= :since AND status = 'failed' "
            "GROUP BY error_code ORDER BY n DESC, error_code LIMIT 20"
        )
        return await self.db.read(lambda c: c.all(sql, {"since": float(since)}))

    async def active_counts(self) -> dict[str, int]:
        rows = await self.db.read(
            lambda c: c.all(f"SELECT status, COUNT(*) AS n FROM tasks WHERE {ACTIVE} GROUP BY status")
        )
        return {str(r["status"]): int(r["n"]) for r in rows}

    async def dead_callbacks(self, limit: int = 10) -> tuple[int, list[Row]]:
        """How many callback deliveries are dead, and the latest ``limit`` of them with their account."""

        async def work(c: Conn) -> tuple[int, list[Row]]:
            count = await c.one("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'dead'")
            rows = await c.all(
                "SELECT d.task_id, d.url, d.attempts, d.finished_at, a.name AS account FROM deliveries d "
                "JOIN accounts a ON a.id = d.account_id WHERE d.status = 'dead' ORDER BY d.finished_at DESC LIMIT :n",
                {"n": limit},
            )
            return (0 if count is None else int(count["n"])), rows

        return await self.db.read(work)

    # --- tasks --------------------------------------------------------------------------------------------------

    async def search_tasks(self, f: TaskFilter, limit: int) -> list[Row]:
        """Tasks of every account (or one), newest first, with the filters given."""
        where: list[str] = []
        params: dict[str, Any] = {"n": limit}
        if f.account_id is not None:
            where.append("t.account_id = :acct")
            params["acct"] = f.account_id
        for column, value in (("status", f.status), ("model", f.model), ("error_code", f.error_code)):
            if value:
                where.append(f"t.{column} = :{column}")
                params[column] = value
        if f.since is not None:
            where.append("t.id >= :lo")
            params["lo"] = id_at(f.since)
        if f.until is not None:
            where.append("t.id < :hi")
            params["hi"] = id_at(f.until)
        if f.before:
            where.append("t.id < :before")
            params["before"] = f.before
        if f.dead_callback:
            where.append("EXISTS (SELECT 1 FROM deliveries d WHERE d.task_id = t.id AND d.status = 'dead')")
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        sql = (
            f"SELECT {_TASK_COLS} FROM tasks t JOIN accounts a ON a.id = t.account_id {clause}"
            "ORDER BY t.id DESC LIMIT :n"
        )
        return await self.db.read(lambda c: c.all(sql, params))

    async def task_history(self, task_id: str) -> TaskHistory | None:
        async def work(c: Conn) -> TaskHistory | None:
            t = {"t": task_id}
            row = await c.one(
                "SELECT state, lease_owner, lease_expires, run_after, cancellable FROM tasks WHERE id = :t", t
            )
            if row is None:
                return None
            delivery = await c.one(
                "SELECT id, url, status, attempts, next_attempt, created, finished_at, resends FROM deliveries "
                "WHERE task_id = :t",
                t,
            )
            attempts = []
            if delivery is not None:
                attempts = await c.all(
                    "SELECT attempt, started_at, status_code, error, latency_ms, next_attempt FROM delivery_attempts "
                    "WHERE delivery_id = :d ORDER BY attempt",
                    {"d": delivery["id"]},
                )
            element = await c.one("SELECT id FROM elements WHERE task_id = :t", t)
            return TaskHistory(
                state=json.loads(row["state"] or "{}"),
                lease_owner=row["lease_owner"],
                lease_expires=row["lease_expires"],
                run_after=float(row["run_after"]),
                cancellable=bool(row["cancellable"]),
                claims=await c.all(
                    "SELECT owner, claimed_at, previous_owner, previous_lease_expires FROM task_claims "
                    "WHERE task_id = :t ORDER BY id",
                    t,
                ),
                ledger=await c.all("SELECT kind, amount, note, created FROM ledger WHERE task_id = :t ORDER BY id", t),
                delivery=delivery,
                attempts=attempts,
                slot=await c.one("SELECT channel, held, acquired_at FROM upstream_slots WHERE task_id = :t", t),
                element_id=None if element is None else str(element["id"]),
            )

        return await self.db.read(work)

    async def failed_with_state(self, since: float, limit: int = 500) -> list[Row]:
        """The provider, provider state and error code of the latest ``limit`` tasks failed since ``since``."""
        sql = (
            "SELECT provider, state, error_code FROM tasks WHERE finished_at >= :since AND status = 'failed' "
            "ORDER BY finished_at DESC LIMIT :n"
        )
        return await self.db.read(lambda c: c.all(sql, {"since": float(since), "n": limit}))

    # --- elements and channels ----------------------------------------------------------------------------------

    async def elements(self, f: ElementFilter, limit: int) -> list[Row]:
        """Live elements of every account (or one), newest first."""
        where = ["e.deleted_at IS NULL"]
        params: dict[str, Any] = {"n": limit}
        if f.account_id is not None:
            where.append("e.account_id = :acct")
            params["acct"] = f.account_id
        if f.provider:
            where.append("e.provider = :provider")
            params["provider"] = f.provider
        if f.before is not None:
            where.append("(e.created_at, e.id) < (:ca, :cid)")
            params.update(ca=f.before[0], cid=f.before[1])
        sql = (
            f"SELECT {_ELEMENT_COLS} FROM elements e JOIN accounts a ON a.id = e.account_id "
            f"WHERE {' AND '.join(where)} ORDER BY e.created_at DESC, e.id DESC LIMIT :n"
        )
        return await self.db.read(lambda c: c.all(sql, params))

    async def element(self, element_id: str) -> Row | None:
        sql = f"SELECT {_ELEMENT_COLS}, e.deleted_at FROM elements e JOIN accounts a ON a.id = e.account_id " \
              "WHERE e.id = :id"  # fmt: skip
        return await self.db.read(lambda c: c.one(sql, {"id": element_id}))

    async def account_limits(self, account_id: int) -> tuple[int | None, int | None]:
        """The account's requests per minute per key and tasks in flight; None where the default applies."""
        sql = "SELECT rate_limit_per_minute, max_in_flight FROM accounts WHERE id = :a"
        row = await self.db.read(lambda c: c.one(sql, {"a": account_id}))
        return (None, None) if row is None else (row["rate_limit_per_minute"], row["max_in_flight"])

    async def slots_by_channel(self) -> dict[str, tuple[int, int]]:
        """Each channel's places held (in flight upstream) and tasks waiting in line for one."""
        rows = await self.db.read(
            lambda c: c.all("SELECT channel, held, COUNT(*) AS n FROM upstream_slots GROUP BY channel, held")
        )
        out: dict[str, tuple[int, int]] = {}
        for r in rows:
            held, waiting = out.get(str(r["channel"]), (0, 0))
            out[str(r["channel"])] = (held + int(r["n"]), waiting) if r["held"] else (held, waiting + int(r["n"]))
        return out


async def accounts_page(db: Database, contains: str, after: str, limit: int) -> list[Row]:
    """Accounts by name, after ``after``, whose names contain ``contains`` (any case; every account when empty)."""
    where, params = ["name > :after"], {"after": after, "n": limit}
    if contains:
        escaped = contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("LOWER(name) LIKE :pattern ESCAPE '\\'")
        params["pattern"] = f"%{escaped}%"
    sql = (
        "SELECT id, name, user_group, available, reserved, captured, in_flight, rate_limit_per_minute, "
        f"max_in_flight, created FROM accounts WHERE {' AND '.join(where)} ORDER BY name LIMIT :n"
    )
    return await db.read(lambda c: c.all(sql, params))
