"""Small builders for store tests: accounts with credits and new task rows."""

from __future__ import annotations

import time
from typing import Any

from reelgate.callbacks import new_secret
from reelgate.domain import new_task_id, new_webhook_id
from reelgate.store.db import Conn
from reelgate.store.sql import Store
from reelgate.store.tasks import Finish, NewTask


async def account(store: Store, name: str = "acme", credits: int = 5000) -> int:
    account_id = await store.accounts.ensure_account(name, None, new_secret())
    if credits:
        await store.accounts.grant(account_id, credits, "test")
    return account_id


def new_task(account_id: int, *, price: int = 1000, callback: str | None = None, cap: int = 1000,
             deadline: float = 600.0, **params: Any) -> NewTask:  # fmt: skip
    now = time.time()
    return NewTask(
        id=new_task_id(now), account_id=account_id, api_key_id=1, model="kling-custom-element",
        provider="local", created=int(now), now=now, deadline=now + deadline, params=params or {"p": 1},
        callback_url=callback, price=price, user_group="default", billing_rule="per_call", estimated_time=30,
        max_in_flight=cap,
    )  # fmt: skip


def done(task_id: str, owner: str, *, ok: bool = True, **changes: Any) -> Finish:
    return Finish(
        task_id=task_id, status="completed" if ok else "failed", now=time.time(), guard="owner", owner=owner,
        result={"element_id": "123"} if ok else None, error_code=None if ok else "unknown_error",
        error_message=None if ok else "boom", webhook_id=new_webhook_id(), **changes,
    )  # fmt: skip


async def query_plan(store: Store, sql: str, params: dict[str, object]) -> str:
    """The engine's plan for ``sql``, its lines joined by `` | `` (indexes are forced on PostgreSQL's tiny tables)."""
    if store.db.dialect == "sqlite":
        rows = await store.db.read(lambda c: c.all(f"EXPLAIN QUERY PLAN {sql}", params))
        return " | ".join(str(r["detail"]) for r in rows)

    async def explain(c: Conn) -> str:
        await c.run("SET LOCAL enable_seqscan = off")  # a table of a few rows would be scanned whatever its indexes
        return " | ".join(str(r["QUERY PLAN"]) for r in await c.all(f"EXPLAIN {sql}", params))

    return await store.db.write(explain)
