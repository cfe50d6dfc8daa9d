"""Finishing tasks: the SQL of the one terminal transition, its settlement, delivery row and optional element row.

A completed per-second task that made fewer seconds than it reserved (``Finish.billed_seconds``) captures only
those (ledger.partial_capture) and releases the rest, in the same transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from reelgate.domain import COMPLETED, FAILED, TaskRecord
from reelgate.ledger import CAPTURE, RELEASE, partial_capture
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
    billed_seconds: float | None = None  # a per-second task's actual seconds (None: it made what it reserved)


async def _ledger(c: Conn, f: Finish, account_id: int, kind: str, amount: int) -> None:
    await c.run(
        "INSERT INTO ledger (account_id, task_id, kind, amount, note, created) VALUES (:a, :id, :kind, :p, '', :now)",
        {"a": account_id, "id": f.task_id, "kind": kind, "p": amount, "now": f.now},
    )


async def _settle(c: Conn, f: Finish, account_id: int, price: int, captured: int) -> None:
    """Move the reservation: ``captured`` of it to captured (0 unless completed), the rest back to available."""
    await c.run(
        "UPDATE accounts SET reserved = reserved - :p, captured = captured + :c, available = available + :p - :c, "
        "in_flight = in_flight - 1 WHERE id = :a",
        {"p": price, "c": captured, "a": account_id},
    )
    if f.status == COMPLETED:
        await _ledger(c, f, account_id, CAPTURE, captured)
    if f.status != COMPLETED or captured < price:
        await _ledger(c, f, account_id, RELEASE, price - captured)


def _captured(f: Finish, price: int, params: str | None) -> int:
    """What a finish captures: nothing unless completed; a per-second task that says how many seconds it made,
    their share of the reservation; else all of it."""
    if f.status != COMPLETED:
        return 0
    if f.billed_seconds is None or params is None:
        return price
    seconds = (json.loads(params).get("billing") or {}).get("seconds")
    return partial_capture(price, int(seconds), f.billed_seconds) if isinstance(seconds, int) else price


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
        f"error_message = :em WHERE id = :id AND {ACTIVE} AND {guard} RETURNING account_id, price, callback_url, "
        f"{'params' if f.billed_seconds is not None else 'NULL AS params'}",
        {"st": f.status, "now": f.now, "res": None if f.result is None else json.dumps(f.result),
         "ec": f.error_code if f.status == FAILED else None, "em": f.error_message if f.status == FAILED else None,
         "id": f.task_id, **extra},
    )  # fmt: skip
    if row is None:
        return None
    account_id, price = int(row["account_id"]), int(row["price"])
    captured = _captured(f, price, row["params"])
    if f.status == COMPLETED and captured != price:
        await c.run("UPDATE tasks SET charged = :c WHERE id = :id", {"c": captured, "id": f.task_id})
    await _settle(c, f, account_id, price, captured)
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
