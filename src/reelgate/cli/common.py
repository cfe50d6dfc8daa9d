"""What every command shares: settings from the environment, migrations, and a store opened for one command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from reelgate.config import ConfigError, Settings
from reelgate.logs import configure
from reelgate.sealing import load_box

if TYPE_CHECKING:
    from reelgate.store.sql import Store

T = TypeVar("T")


def settings() -> Settings:
    try:
        s = Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure(s.log_level, s.log_json)
    return s


def migrate_db(s: Settings) -> None:
    from reelgate.store.migrate import upgrade  # Alembic and SQLAlchemy: only for commands that use the database

    s.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(s.resolved_database_url)


def with_store(work: Callable[[Store], Awaitable[T]]) -> T:
    """Run one async piece of work against the configured database (migrated first)."""
    s = settings()
    migrate_db(s)

    from reelgate.store.sql import Store

    async def main() -> T:
        store = await Store.open(s.resolved_database_url, pool_size=2, box=load_box(s))
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def account_id(store: Store, name: str) -> int:
    found = await store.accounts.account_id(name)
    if found is None:
        typer.echo(f"error: no account named {name!r}", err=True)
        raise typer.Exit(1)
    return found


def credits_to_milli(amount: str) -> int:
    try:
        value = round(float(amount) * 1000)
    except ValueError:
        value = 0
    if value <= 0:
        typer.echo(f"error: credits must be a positive number, got {amount!r}", err=True)
        raise typer.Exit(2)
    return value
