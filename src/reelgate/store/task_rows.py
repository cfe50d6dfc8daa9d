"""What every task module shares: the public columns, the active-status test, and a task read from a row."""

from __future__ import annotations

import json
from typing import Any, cast

from reelgate.domain import TaskRecord
from reelgate.store.db import Conn, Row

# record() reads these by position: keep the two in the same order.
PUBLIC_COLS = (
    "id, account_id, model, status, progress, created, cancellable, estimated_time, price, user_group, "
    "billing_rule, charged, result, error_code, error_message, callback_url"
)
ACTIVE = "status IN ('pending', 'processing')"


def record(row: Row) -> TaskRecord:
    """A task from a row of ``PUBLIC_COLS``, read by position: on the hottest route, a lookup by name in
    sqlite3.Row compares every column name."""
    (task_id, account_id, model, status, progress, created, cancellable, estimated_time, price, user_group,
     billing_rule, charged, result, error_code, error_message, callback_url) = cast(tuple[Any, ...], row)  # fmt: skip
    return TaskRecord(
        id=task_id,
        account_id=int(account_id),
        model=model,
        status=status,
        progress=int(progress),
        created=int(created),
        cancellable=bool(cancellable),
        estimated_time=int(estimated_time),
        price=int(price),
        user_group=user_group,
        billing_rule=billing_rule,
        charged=None if charged is None else int(charged),
        result=None if result is None else json.loads(result),
        error_code=error_code,
        error_message=error_message,
        callback_url=callback_url,
    )


async def get_in(c: Conn, task_id: str) -> TaskRecord | None:
    """One task, read inside the caller's transaction."""
    row = await c.one(f"SELECT {PUBLIC_COLS} FROM tasks WHERE id = :id", {"id": task_id})
    return None if row is None else record(row)
