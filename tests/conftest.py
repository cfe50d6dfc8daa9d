"""Shared fixtures: a fresh database on SQLite and on PostgreSQL for every store test, and small helpers."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from reelgate.store.migrate import upgrade
from reelgate.store.sql import Store

PG_BASE = os.environ.get("REELGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TABLES = "accounts, api_keys, ledger, tasks, idempotency, elements, deliveries, delivery_attempts, task_claims"


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_BASE, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_reason() -> str | None:
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL at {PG_BASE} is unreachable ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    """A database of our own for this test session, migrated once, dropped at the end."""
    reason = _pg_reason()
    if reason is not None:
        if os.environ.get("REELGATE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}; REELGATE_REQUIRE_POSTGRES=1 forbids skipping the PostgreSQL tests")
        pytest.skip(f"{reason}: PostgreSQL tests skipped (set REELGATE_TEST_PG_URL)")
    name = f"reelgate_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg_admin(f"CREATE DATABASE {name}"))
    url = PG_BASE.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "reelgate.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_session_url")
    asyncio.run(truncate(url))
    return url


async def truncate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(db_url, pool_size=4)
    try:
        yield opened
    finally:
        await opened.close()
