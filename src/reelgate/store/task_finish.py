"""Finishing tasks: the SQL of the one terminal transition, its settlement, delivery row and optional element row."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from reelgate.domain import COMPLETED, FAILED, TaskRecord
from reelgate.ledger import CAPTURE, RELEASE
from reelgate.store.db import Conn
from reelgate.store.task_rows import ACTIVE, get_in


@dataclass(frozen=True)
class Finish:
    """A terminal transition. ``guard`` says who may make it: the lease owner, a cancel, or the deadline sweep."""

    task_id: str
    status: Literal["completed", "failed"]
    now: float
    guard: Literal["owner", "cancel", "expired"]
    owner: str = ""
    account_id: int | None = None
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    element: dict[str, Any] | None = None  # element_id, provider, upstream_id: a row only when the task made one
    webhook_id: str = ""


async def _settle(c: Conn, f: Finish, account_id: int, price: int) -> None:
    moved = (
        "reserved = reserved - :p, captured = captured + :p"
        if f.status == COMPLETED
        else "reserved = reserved - :p, available = available + :p"
    )
    await c.run(f"UPDATE accounts SET {moved}, in_flight = in_flight - 1 WHERE id = :a", {"p": price, "a": account_id})
    await c.run(
        "INSERT INTO ledger (account_id, task_id, kind, amount, note, created) VALUES (:a, :id, :kind, :p, '', :now)",
        {"a": account_id, "id": f.task_id, "kind": CAPTURE if f.status == COMPLETED else RELEASE, "p": price,
         "now": f.now},
    )  # fmt: skip


def _guard_sql(f: Finish) -> tuple[str, dict[str, Any]]:
    if f.guard == "owner":
        return "lease_owner = :owner", {"owner": f.owner}
    if f.guard == "cancel":
        return "cancellable = 1 AND account_id = :acct", {"acct": f.account_id}
    return "deadline < :now AND (lease_expires IS NULL OR lease_expires < :now)", {}


async def finish_in(c: Conn, f: Finish) -> TaskRecord | None:
    guard, extra = _guard_sql(f)
    row = await c.one(
        "UPDATE tasks SET status = :st, progress = CASE WHEN :st = 'completed' THEN 100 ELSE progress END, "
        "finished_at = :now, updated_at = :now, lease_owner = NULL, lease_expires = NULL, cancellable = 0, "
        "charged = CASE WHEN :st = 'completed' THEN price ELSE 0 END, result = :res, error_code = :ec, "
        f"error_message = :em WHERE id = :id AND {ACTIVE} AND {guard} RETURNING account_id, price, callback_url",
        {"st": f.status, "now": f.now, "res": None if f.result is None else json.dumps(f.result),
         "ec": f.error_code if f.status == FAILED else None, "em": f.error_message if f.status == FAILED else None,
         "id": f.task_id, **extra},
    )  # fmt: skip
    if row is None:
        return None
    account_id, price = int(row["account_id"]), int(row["price"])
    await _settle(c, f, account_id, price)
    if f.element is not None:
        await c.run(
            "INSERT INTO elements (id, account_id, task_id, provider, upstream_id, data, created, created_at) "
            "VALUES (:id, :a, :t, :p, :u, :d, :c, :now)",
            {"id": f.element["element_id"], "a": account_id, "t": f.task_id, "p": f.element["provider"],
             "u": f.element.get("upstream_id"), "d": json.dumps(f.result), "c": int(f.now), "now": f.now},
        )  # fmt: skip
    if row["callback_url"]:
        await c.run(
            "INSERT INTO deliveries (id, task_id, account_id, url, status, attempts, next_attempt, created) "
            "VALUES (:id, :t, :a, :u, 'pending', 0, :now, :now)",
            {"id": f.webhook_id, "t": f.task_id, "a": account_id, "u": row["callback_url"], "now": f.now},
        )
    return await get_in(c, f.task_id)
