"""Task rows: the TaskStore facade over creating, claiming and finishing, and the reads of tasks.

service.py decides what a transaction holds: it passes the whole of it in one call (a NewTask with its
Idempotency, a Finish with its result, element and webhook id), and each call here is one transaction. The SQL of
each intent lives in its own module: task_create.py (reserve and insert, alone or a burst at a time),
task_leases.py (claim, heartbeat, progress, state, reschedule, the due queue and moving a task up it),
task_finish.py (the terminal transition with its settlement, delivery row and, when given, element row). This
module keeps the reads and wires the engines.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from reelgate.domain import TaskRecord
from reelgate.store import task_create, task_leases
from reelgate.store.coalesce import CoalescedReads
from reelgate.store.create_batches import CreateBatches
from reelgate.store.db import Conn, Database
from reelgate.store.task_create import SQLITE_BATCHES_IN_FLIGHT, Idempotency, NewTask
from reelgate.store.task_finish import Finish, finish_in
from reelgate.store.task_leases import Claim
from reelgate.store.task_rows import PUBLIC_COLS, record

__all__ = ["Claim", "Finish", "Idempotency", "NewTask", "TaskStore", "finish_in", "list_query", "record"]


def list_query(account_id: int, *, status: str, model: str, error_code: str, after: tuple[float, str] | None,
               limit: int) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """A page of one account's tasks, newest first, after the task made at ``after`` (its created_at and id),
    naming only the filters given. Both matter to the plan: SQLite plans before it sees the values, so a test such
    as ``(:ec = '' OR error_code = :ec)`` would keep it from seeking ``tasks_failed_by_account`` (and the error
    code filter would read every task of the account), and the row comparison is a range on the index, so a deep
    page starts at its cursor instead of reading past every newer task."""
    where: list[str] = ["account_id = :a"]
    params: dict[str, Any] = {"a": account_id, "n": limit}
    for column, value in (("status", status), ("model", model), ("error_code", error_code)):
        if value:
            where.append(f"{column} = :{column}")
            params[column] = value
    if after is not None:
        where.append("(created_at, id) < (:ca, :cid)")
        params.update(ca=after[0], cid=after[1])
    sql = f"SELECT {PUBLIC_COLS} FROM tasks WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT :n"
    return sql, params


class TaskStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._postgres = db.dialect == "postgresql"
        self._lock = " FOR UPDATE SKIP LOCKED" if self._postgres else ""
        # Task reads of one loop turn share a query; plain submits that arrive together are created together.
        # PostgreSQL: one batch at a time (create_batches.py). SQLite: every batch goes straight to the group commit,
        # which joins the batches that wait for the write lock into one transaction; one at a time, a burst that
        # came while another process held the lock waited a whole commit more (SQLite x2: 0.69x the submits/s).
        create_batch = self._create_batch_pg if self._postgres else self._create_batch_sqlite
        in_flight = 1 if self._postgres else SQLITE_BATCHES_IN_FLIGHT
        self._creates: CreateBatches[NewTask, TaskRecord] = CreateBatches(create_batch, self._create_one,
                                                                          in_flight=in_flight)  # fmt: skip
        if self._postgres:
            self._reads = CoalescedReads(db, f"SELECT {PUBLIC_COLS} FROM tasks WHERE id = ANY(:ids)", record)
        else:
            sql = f"SELECT {PUBLIC_COLS} FROM tasks WHERE id IN (SELECT value FROM json_each(:ids))"
            self._reads = CoalescedReads(db, sql, record, bind=lambda ids: orjson.dumps(ids).decode())

    async def create(self, t: NewTask, idem: Idempotency | None) -> tuple[TaskRecord, str | None]:
        """Reserve, insert the task and its idempotency record in one transaction.

        Returns the new task and None, or, when the idempotency key was used before, the original task and
        the body hash it was first used with.
        """
        if idem is None:
            return await self._creates.create(t), None
        return await self._create_alone(t, idem)

    async def _create_batch_sqlite(self, tasks: list[NewTask]) -> list[TaskRecord | Exception | None]:
        return await task_create.create_batch_sqlite(self.db, tasks)

    async def _create_batch_pg(self, tasks: list[NewTask]) -> list[TaskRecord | Exception | None]:
        return await task_create.create_batch_pg(self.db, tasks)

    async def _create_alone(self, t: NewTask, idem: Idempotency | None = None) -> tuple[TaskRecord, str | None]:
        return await task_create.create_alone(self.db, t, idem, self._postgres)

    async def _create_one(self, t: NewTask) -> TaskRecord:
        return (await self._create_alone(t))[0]

    async def get(self, task_id: str, account_id: int | None = None) -> TaskRecord | None:
        rec = cast(TaskRecord | None, await self._reads.get(task_id))
        if rec is None or (account_id is not None and rec.account_id != account_id):
            return None
        return rec

    async def list_for_account(
        self, account_id: int, *, status: str, model: str, after: str, limit: int, error_code: str = ""
    ) -> list[TaskRecord]:
        """The account's tasks newest first, after the task ``after`` (a previous page's last id; unknown: from the
        newest), with the given status, model and error code ('' for any)."""

        async def work(c: Conn) -> list[TaskRecord]:
            cursor = await c.one(
                "SELECT created_at FROM tasks WHERE id = :id AND account_id = :a",
                {"id": after, "a": account_id},
            )
            start = None if cursor is None else (float(cursor["created_at"]), after)
            sql, params = list_query(account_id, status=status, model=model, error_code=error_code, after=start,
                                     limit=limit)  # fmt: skip
            return [record(r) for r in await c.all(sql, params)]

        return await self.db.read(work)

    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Claim]:
        return await task_leases.claim(self.db, self._lock, owner, now, lease, limit)

    async def heartbeat(self, task_id: str, owner: str, expires: float) -> bool:
        return await task_leases.heartbeat(self.db, task_id, owner, expires)

    async def progress(self, task_id: str, owner: str, percent: int, now: float) -> bool:
        return await task_leases.progress(self.db, task_id, owner, percent, now)

    async def save_state(self, task_id: str, owner: str, state: dict[str, Any], cancellable: bool | None) -> bool:
        return await task_leases.save_state(self.db, task_id, owner, state, cancellable)

    async def reschedule(self, task_id: str, owner: str, run_after: float, state: dict[str, Any]) -> bool:
        return await task_leases.reschedule(self.db, task_id, owner, run_after, state)

    async def is_held(self, task_id: str, owner: str) -> bool:
        return await task_leases.is_held(self.db, task_id, owner)

    async def poll_soon(self, task_id: str, now: float, provider: str) -> bool:
        return await task_leases.poll_soon(self.db, task_id, now, provider)

    async def finish(self, f: Finish) -> TaskRecord | None:
        """The one terminal transition: status, settlement, element and delivery row commit together.

        Returns the terminal task, or None when the guard did not hold (someone else finished it first).
        """
        return await self.db.write(lambda c: finish_in(c, f))

    async def overdue(self, now: float, limit: int = 100) -> list[str]:
        return await task_leases.overdue(self.db, now, limit)

    async def recent_durations(self, model: str, limit: int = 200) -> list[float]:
        rows = await self.db.read(
            lambda c: c.all(
                "SELECT finished_at - created_at AS d FROM tasks WHERE model = :m AND status = 'completed' "
                "AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT :n",
                {"m": model, "n": limit},
            )
        )
        return [float(r["d"]) for r in rows]

    async def queue_stats(self, now: float) -> tuple[int, float]:
        return await task_leases.queue_stats(self.db, now)

    async def next_due(self) -> float | None:
        return await task_leases.next_due(self.db)
