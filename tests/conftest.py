"""Shared fixtures: a fresh database on SQLite and on PostgreSQL for every store test, and small helpers."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dbs import PG_BASE, pg_admin, pg_unreachable, truncate
from harness import Api, make_settings, open_api
from reelgate.config import Settings
from reelgate.store.migrate import upgrade
from reelgate.store.sql import Store


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    """A database of our own for this test session, migrated once, dropped at the end."""
    reason = pg_unreachable()
    if reason is not None:
        if os.environ.get("REELGATE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}; REELGATE_REQUIRE_POSTGRES=1 forbids skipping the PostgreSQL tests")
        pytest.skip(f"{reason}: PostgreSQL tests skipped (set REELGATE_TEST_PG_URL)")
    name = f"reelgate_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(pg_admin(f"CREATE DATABASE {name}"))
    url = PG_BASE.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    asyncio.run(pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


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


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(db_url, pool_size=4)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    """The app in-process (real worker and dispatcher) on each database engine."""
    async with open_api(settings) as opened:
        yield opened
