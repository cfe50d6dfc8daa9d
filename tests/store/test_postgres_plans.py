"""PostgreSQL plans: reads are planned for the tables as they are now, never from a plan cached when they were small.

A generic plan made while ``tasks`` was nearly empty is a sequential scan, and a pooled connection would keep it
as the table grows (measured: a task read at 3 ms after 30,000 inserts, 0.2 ms on a new connection).
"""

from __future__ import annotations

from typing import Any

import pytest

from reelgate.store.db import Conn
from reelgate.store.sql import Store

from .factories import account, new_task

READ = "SELECT id FROM tasks WHERE id = ANY(:ids)"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # plan caching is PostgreSQL's
async def test_repeated_reads_on_one_connection_never_use_a_cached_generic_plan(store: Store) -> None:
    acct = await account(store, credits=10**6)
    first, _ = await store.tasks.create(new_task(acct), None)

    async def work(c: Conn) -> Any:
        for _ in range(12):  # PostgreSQL weighs a generic plan after five executions
            assert [r["id"] for r in await c.all(READ, {"ids": [first.id]})] == [first.id]
        return await c.one(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE :s",
            {"s": "SELECT id FROM tasks WHERE id = ANY%"},
        )

    row = await store.db.read(work)
    assert row is not None and row["generic_plans"] == 0 and row["custom_plans"] >= 12
