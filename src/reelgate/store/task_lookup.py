"""An operator's read of one task, whoever owns it: the task with its owner's name, its provider and its times.

The API's own reads (tasks.py) are scoped to the caller's account and return the public columns only; an operator
looking into a task for a customer needs what the API never shows (the provider, the update and finish times, the
attempts) and the account it belongs to, in one read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reelgate.store.db import Database


@dataclass(frozen=True)
class TaskOverview:
    """One task as an operator sees it. Credits are in thousandths (``price`` was reserved, ``charged`` captured);
    times are Unix seconds."""

    id: str
    account_id: int
    account: str
    model: str
    provider: str
    status: str
    progress: int
    user_group: str
    created_at: float
    updated_at: float
    finished_at: float | None
    deadline: float
    attempts: int
    price: int
    charged: int | None
    result: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    callback_url: str | None


_SQL = (
    "SELECT t.id, t.account_id, a.name AS account, t.model, t.provider, t.status, t.progress, t.user_group, "
    "t.created_at, t.updated_at, t.finished_at, t.deadline, t.attempts, t.price, t.charged, t.result, "
    "t.error_code, t.error_message, t.callback_url FROM tasks t JOIN accounts a ON a.id = t.account_id "
    "WHERE t.id = :id"
)


async def find_task(db: Database, task_id: str) -> TaskOverview | None:
    """The task with this id in any account, or None."""
    row = await db.read(lambda c: c.one(_SQL, {"id": task_id}))
    if row is None:
        return None
    return TaskOverview(
        id=str(row["id"]),
        account_id=int(row["account_id"]),
        account=str(row["account"]),
        model=str(row["model"]),
        provider=str(row["provider"]),
        status=str(row["status"]),
        progress=int(row["progress"]),
        user_group=str(row["user_group"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
        deadline=float(row["deadline"]),
        attempts=int(row["attempts"]),
        price=int(row["price"]),
        charged=None if row["charged"] is None else int(row["charged"]),
        result=None if row["result"] is None else json.loads(row["result"]),
        error_code=row["error_code"],
        error_message=row["error_message"],
        callback_url=row["callback_url"],
    )
