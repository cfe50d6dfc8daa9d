"""What every command shares: settings from the environment, migrations, a store (or the operator use cases) opened
for one command, the ``--json`` option, and how times and key-value panels look.

A database that cannot be opened (a PostgreSQL server that refuses or cannot be resolved, a SQLite path under a
file or in a directory that cannot be created, a file that is not a database) ends the command with one line on
stderr naming the database (without credentials) and the reason, and exit code 5; the traceback goes to the log at
DEBUG (``REELGATE_LOG_LEVEL=DEBUG``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar, cast

import typer
from rich.table import Table
from typer.models import OptionInfo

from reelgate.config import ConfigError, Settings
from reelgate.errors import ApiError, InvalidRequest
from reelgate.logs import configure
from reelgate.operators import Operators
from reelgate.sealing import load_box

if TYPE_CHECKING:
    from reelgate.store.sql import Store

T = TypeVar("T")
EXIT_DATABASE = 5  # as the user commands' 5 means the server could not be reached
ROOT_JSON = "as_json"  # the name of ``reelgate --json``'s parameter on the root command
log = logging.getLogger("reelgate")


def _json_here_or_at_the_root(ctx: typer.Context, value: bool) -> bool:
    # `reelgate --json task get ID` and `reelgate task get ID --json` mean the same: the root's options are parsed
    # before the command's, so its value is known here.
    return value or bool(ctx.find_root().params.get(ROOT_JSON))


def json_option(help: str) -> OptionInfo:
    """``--json`` for a command; ``reelgate --json COMMAND ...`` sets it too."""
    return cast(OptionInfo, typer.Option("--json", callback=_json_here_or_at_the_root, help=help))


AsJson = Annotated[bool, json_option("Print the answer as JSON on stdout (for scripts); also: reelgate --json ...")]


def settings() -> Settings:
    try:
        s = Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure(s.log_level, s.log_json, access=s.access_log)
    return s


def migrate_db(s: Settings) -> list[str]:
    """Apply the migrations this code carries; the revisions applied (none when the schema was current)."""
    from reelgate.store.migrate import upgrade  # Alembic and SQLAlchemy: only for commands that use the database

    try:
        s.data_dir.mkdir(parents=True, exist_ok=True)
        return upgrade(s.resolved_database_url)
    except Exception as exc:  # opening the database is all this does: whatever stops it, the operator needs one line
        raise database_unavailable(s, exc) from None


def failure_reason(exc: BaseException) -> str:
    """Why a database could not be opened, in words, without the driver's wrapping: "Connection refused", "Name or
    service not known", "Not a directory: /srv/x", 'role "app" does not exist', "file is not a database"."""
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    if not isinstance(cause, OSError) and isinstance(cause.__cause__, OSError):
        cause = cause.__cause__  # the store's "cannot connect" wraps the socket's error
    if isinstance(cause, FileExistsError | NotADirectoryError):  # mkdir met a file where a directory should be
        return f"Not a directory: {cause.filename}" if cause.filename else "Not a directory"
    if isinstance(cause, OSError):
        text = os.strerror(cause.errno) if isinstance(cause.errno, int) and cause.errno > 0 else cause.strerror
        text = text or str(cause) or type(cause).__name__
        return f"{text}: {cause.filename}" if cause.filename else text
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def database_unavailable(s: Settings, exc: BaseException) -> typer.Exit:
    log.debug("cannot open the database", exc_info=exc)
    typer.echo(f"error: cannot open the database ({database_label(s)}): {failure_reason(exc)}", err=True)
    return typer.Exit(EXIT_DATABASE)


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
        try:
            store = await Store.open(s.resolved_database_url, pool_size=2, box=load_box(s))
        except Exception as exc:
            raise database_unavailable(s, exc) from None
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
