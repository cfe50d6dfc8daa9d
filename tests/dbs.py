"""PostgreSQL helpers shared by fixtures and tests: the server to use, admin statements, emptying a database."""

from __future__ import annotations

import asyncio
import os

import asyncpg

PG_BASE = os.environ.get("REELGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TABLES = "accounts, api_keys, ledger, tasks, idempotency, elements, deliveries, delivery_attempts, task_claims, assets"
TABLES += ", upstream_slots"  # migration 0008
TABLES += ", files"  # migration 0010 (the file API)
TABLES += ", process_heartbeats"  # migration 0012 (worker and dispatcher liveness)
TABLES += ", console_admins, console_sessions, console_audit"  # migration 0013 (the operator web console)


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_BASE, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_unreachable() -> str | None:
    try:
        asyncio.run(pg_admin("SELECT 1"))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL at {PG_BASE} is unreachable ({type(exc).__name__}: {exc})"
    return None


async def truncate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
