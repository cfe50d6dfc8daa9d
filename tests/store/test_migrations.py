"""One Alembic history for both engines: upgrades of a database that already holds data keep the data."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from dbs import PG_BASE
from reelgate.store.migrate import upgrade
from reelgate.store.sql import Store

from .factories import account, new_task


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    request.getfixturevalue("pg_session_url")  # skips or fails exactly as the other PostgreSQL tests do
    name = f"reelgate_migr_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    yield PG_BASE.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_BASE)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _seed(url: str) -> str:
    store = await Store.open(url, pool_size=1)
    try:
        acct = await account(store, credits=3000)
        rec, _ = await store.tasks.create(new_task(acct), None)
        return rec.id
    finally:
        await store.close()


async def _after(url: str, task_id: str) -> None:
    store = await Store.open(url, pool_size=1)
    try:
        rec = await store.tasks.get(task_id)
        assert rec is not None and rec.status == "pending"
        claims = await store.tasks.claim("w", time.time(), 30, 5)  # the claim now writes the 0002 audit table
        assert [c.id for c in claims] == [task_id]
        acct = await store.accounts.account_id("acme")
        assert acct is not None and (await store.accounts.view(acct)).balance.available == 2000
    finally:
        await store.close()


def test_upgrade_with_data_in_place(empty_url: str) -> None:
    upgrade(empty_url, "0001")
    task_id = asyncio.run(_seed(empty_url))
    upgrade(empty_url)
    upgrade(empty_url)  # idempotent
    asyncio.run(_after(empty_url, task_id))
