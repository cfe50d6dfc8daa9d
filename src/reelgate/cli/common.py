"""What every command shares: settings from the environment, migrations, a store (or the operator use cases) opened
for one command, and how times and key-value panels look."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.table import Table

from reelgate.config import ConfigError, Settings
from reelgate.errors import ApiError, InvalidRequest
from reelgate.logs import configure
from reelgate.operators import Operators
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


def migrate_db(s: Settings) -> list[str]:
    """Apply the migrations this code carries; the revisions applied (none when the schema was current)."""
    from reelgate.store.migrate import upgrade  # Alembic and SQLAlchemy: only for commands that use the database

    s.data_dir.mkdir(parents=True, exist_ok=True)
    return upgrade(s.resolved_database_url)


def database_label(s: Settings) -> str:
    """The database a command uses, as an operator can recognise it, without credentials: the SQLite file's
    absolute path, or a server URL without user, password or query."""
    url = s.resolved_database_url
    scheme, _, rest = url.partition("://")
    if scheme.startswith("sqlite"):
        return f"SQLite file {rest.lstrip('/') and '/' + rest.lstrip('/')}"
    return f"{scheme.split('+')[0]}://{rest.rsplit('@', 1)[-1].split('?')[0]}"


def announce_database(s: Settings) -> None:
    # On stderr, so `KEY=$(reelgate keys create ... | tail -1)` still captures the key alone; said every time because
    # a command run from another directory otherwise silently opens a new ./reelgate-data database.
    typer.echo(f"database: {database_label(s)}", err=True)


def with_store(work: Callable[[Store], Awaitable[T]]) -> T:
    """Run one async piece of work against the configured database (migrated first)."""
    s = settings()
    announce_database(s)
    migrate_db(s)

    from reelgate.store.sql import Store

    async def main() -> T:
        store = await Store.open(s.resolved_database_url, pool_size=2, box=load_box(s))
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(main())


def operate(work: Callable[[Operators], Awaitable[T]]) -> T:
    """Run one operator use case against the configured database; a refusal is one line on stderr and exit 1
    (no such account, key or task) or 2 (a value out of range)."""
    try:
        return with_store(lambda store: work(Operators(store)))
    except ApiError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2 if isinstance(exc, InvalidRequest) else 1) from None


def credits_to_milli(amount: str) -> int:
    try:
        value = round(float(amount) * 1000)
    except ValueError:
        value = 0
    if value <= 0:
        typer.echo(f"error: credits must be a positive number, got {amount!r}", err=True)
        raise typer.Exit(2)
    return value


def when(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds)) if seconds else ""


def grid() -> Table:
    """Two columns, a bold key and its value; ids and URLs are shown whole, folded rather than cut."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return table
