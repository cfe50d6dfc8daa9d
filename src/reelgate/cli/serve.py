"""Commands that run Reelgate: ``reelgate serve | worker | dispatcher | migrate``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Annotated

import typer

from reelgate.cli.common import database_label, migrate_db, settings
from reelgate.config import ConfigError, Settings

log = logging.getLogger("reelgate")


def _warn_private(s: Settings) -> None:
    if s.allow_private_networks:
        log.warning(
            "REELGATE_ALLOW_PRIVATE_NETWORKS is ON: media fetches and callbacks may reach loopback and private "
            "addresses over plain http. Never run like this where strangers can submit URLs."
        )


def migrate() -> None:
    """Apply database migrations (serve and worker apply them too), and say which.

    The database: REELGATE_DATABASE_URL, else reelgate.db in REELGATE_DATA_DIR (default: ./reelgate-data, relative to
    the current directory). One that cannot be opened is one error line and exit 5.
    """
    from reelgate.store.migrate import head_revision

    s = settings()
    applied = migrate_db(s)
    if applied:
        typer.echo(f"applied {len(applied)} migration(s) to {database_label(s)}: {', '.join(applied)}")
    else:
        typer.echo(f"nothing to apply: {database_label(s)} is at the latest schema ({head_revision()})")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="API processes (each also runs tasks).")] = 1,
    no_tasks: Annotated[bool, typer.Option("--no-tasks", help="Serve the API only; run no workers.")] = False,
) -> None:
    """Run the API, the task workers and the callback dispatcher.

    The database: REELGATE_DATABASE_URL, else reelgate.db in REELGATE_DATA_DIR (default: ./reelgate-data, relative to
    the current directory), migrated first.
    """
    import uvicorn

    from reelgate.api.server import BoundedHttpToolsProtocol

    s = settings()
    _prepared(s)
    if not s.public_base_url:
        os.environ["REELGATE_PUBLIC_BASE_URL"] = f"http://{host}:{port}"
    if no_tasks:
        os.environ["REELGATE_SERVE_NO_TASKS"] = "1"
    uvicorn.run(
        "reelgate.runtime:app_from_env", factory=True, host=host, port=port, workers=workers if workers > 1 else None,
        loop="uvloop", http=BoundedHttpToolsProtocol, access_log=False, log_config=None, timeout_keep_alive=30,
        timeout_graceful_shutdown=10, backlog=2048, limit_concurrency=4096,
    )  # fmt: skip


def _prepared(s: Settings) -> None:
    """Warn about the dev switch, migrate, and fail fast (exit 2) on a bad provider configuration."""
    from reelgate.runtime import check_providers

    _warn_private(s)
    migrate_db(s)
    try:
        check_providers(s)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _run_background(s: Settings, *, tasks: bool, dispatch: bool) -> None:
    """Run workers and/or a dispatcher until SIGINT or SIGTERM; running tasks are left to expire their leases."""
    import uvloop

    from reelgate.heap import freeze_startup_objects
    from reelgate.runtime import build_runtime

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        rt = build_runtime(s, worker=tasks, dispatcher=dispatch)
        await rt.start()
        freeze_startup_objects()
        await stop.wait()
        await rt.close()

    uvloop.run(runner())


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            show_default=False,
            help="Tasks run at once by this process (default: REELGATE_WORKER_CONCURRENCY, else 4).",
        ),
    ] = None,
    dispatch: Annotated[bool, typer.Option(help="Also deliver callbacks from this process.")] = True,
) -> None:
    """Run task workers (and, by default, a callback dispatcher) without the API.

    They share the API's database (REELGATE_DATABASE_URL, else reelgate.db in REELGATE_DATA_DIR, default
    ./reelgate-data relative to the current directory): PostgreSQL for processes on several machines.
    """
    s = settings()
    if concurrency is not None:
        if concurrency < 1:
            raise typer.BadParameter("must be at least 1", param_hint="--concurrency")
        s = s.with_changes(worker_concurrency=concurrency)
    _prepared(s)
    _run_background(s, tasks=True, dispatch=dispatch)


def dispatcher() -> None:
    """Run only the callback dispatcher."""
    s = settings()
    _prepared(s)
    _run_background(s, tasks=False, dispatch=True)


def server_commands() -> list[Callable[..., None]]:
    """The commands in the order ``reelgate --help`` lists them."""
    return [migrate, serve, worker, dispatcher]
