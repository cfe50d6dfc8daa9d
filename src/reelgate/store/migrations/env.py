"""Alembic environment: runs the migrations on the URL the caller put in the config (sync SQLite or asyncpg)."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine, make_url, pool
from sqlalchemy.ext.asyncio import create_async_engine


def _run(connection: Connection) -> None:
    # The caller may pass a list in config.attributes["applied"]: each revision applied is appended to it, so
    # `reelgate migrate` can say what it did.
    applied = context.config.attributes.get("applied")

    def record(ctx: object, step: Any, heads: object, run_args: object) -> None:
        if applied is not None and step.is_upgrade:
            applied.append(step.up_revision_id)

    context.configure(connection=connection, target_metadata=None, render_as_batch=True, on_version_apply=record)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    # Query parameters of a libpq-style URL (e.g. ?search_path=x) are server settings for asyncpg.
    parsed = make_url(url)
    settings = {k: str(v) for k, v in parsed.query.items()}
    engine = create_async_engine(
        parsed.set(query={}), poolclass=pool.NullPool, connect_args={"server_settings": settings}
    )
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def main() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or ""
    if url.startswith("postgresql+asyncpg"):
        asyncio.run(_run_async(url))
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


main()
