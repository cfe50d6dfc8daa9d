"""Commands that run Reelgate: ``reelgate serve | worker | dispatcher | migrate``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from reelgate.cli.common import database_label, migrate_db, settings
from reelgate.config import ConfigError, Settings

log = logging.getLogger("reelgate")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's name (metrics.py reads the same)
MetricsPort = Annotated[
    int | None,
    typer.Option(metavar="PORT", show_default=False, min=1, max=65535,
                 help="Serve this process's /metrics (and /healthz) on this port, for Prometheus."),
]  # fmt: skip
MetricsHost = Annotated[
    str, typer.Option(help="Address for --metrics-port (0.0.0.0 or a private address for a scraper elsewhere).")
]


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
    the current directory), migrated first. /metrics is on the API's port; with --workers N, any of its processes
    answers with the sum over all N.
    """
    import uvicorn

    from reelgate.api.server import BoundedHttpToolsProtocol

    s = settings()
    _prepared(s)
    if not s.public_base_url:
        os.environ["REELGATE_PUBLIC_BASE_URL"] = f"http://{host}:{port}"
    if no_tasks:
        os.environ["REELGATE_SERVE_NO_TASKS"] = "1"
    with _shared_metrics_dir(workers):
        uvicorn.run(
            "reelgate.runtime:app_from_env", factory=True, host=host, port=port,
            workers=workers if workers > 1 else None, loop="uvloop", http=BoundedHttpToolsProtocol, access_log=False,
            log_config=None, timeout_keep_alive=30, timeout_graceful_shutdown=10, backlog=2048, limit_concurrency=4096,
        )  # fmt: skip


@contextlib.contextmanager
def _shared_metrics_dir(workers: int) -> Iterator[None]:
    """Where serve's API processes add up their metrics, so a scrape of any one of them answers for all (a scrape
    of one port reaches one process at random): PROMETHEUS_MULTIPROC_DIR when set (emptied of an earlier run's
    files first, as prometheus_client requires), else, with --workers above 1, a temporary directory removed after.
    Set in the environment before the processes start, since prometheus_client reads it once, on import."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield
        return
    if workers <= 1:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="reelgate-metrics-") as tmp:
        os.environ[MULTIPROC_ENV] = tmp
        try:
            yield
        finally:
            del os.environ[MULTIPROC_ENV]


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


def _run_background(s: Settings, *, tasks: bool, dispatch: bool, metrics_at: socket.socket | None) -> None:
    """Run workers and/or a dispatcher until SIGINT or SIGTERM; running tasks are left to expire their leases.
    With ``metrics_at``, serve /metrics there meanwhile."""
    import uvloop

    from reelgate.api.metrics_app import metrics_app, serve_metrics
    from reelgate.health import Thresholds, backlog_reader
    from reelgate.heap import freeze_startup_objects
    from reelgate.metrics import BacklogGauges
    from reelgate.runtime import build_runtime

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        rt = build_runtime(s, worker=tasks, dispatcher=dispatch)
        await rt.start()
        serving: asyncio.Task[None] | None = None
        if metrics_at is not None:
            gauges = BacklogGauges(rt.metrics, backlog_reader(rt.store, Thresholds.from_settings(s)))
            app = metrics_app(rt.metrics, gauges, s.metrics_token)
            serving = asyncio.create_task(serve_metrics(app, metrics_at, stop))
            host, port = metrics_at.getsockname()[:2]
            log.info("serving metrics", extra={"url": f"http://{host}:{port}/metrics"})
        freeze_startup_objects()
        await stop.wait()
        if serving is not None:
            await serving  # no scrape reads a store being closed
        await rt.close()

    uvloop.run(runner())


def _metrics_socket(host: str, port: int | None) -> socket.socket | None:
    """The --metrics-port socket, bound before any work starts: a port in use is one error line and exit 2."""
    if port is None:
        return None
    from reelgate.api.metrics_app import bind

    if os.environ.get(MULTIPROC_ENV):
        log.warning(f"{MULTIPROC_ENV} is set: this process's /metrics will add up every process writing there; "
                    "leave it unset for worker and dispatcher (serve sets its own)")  # fmt: skip
    try:
        return bind(host, port)
    except OSError as exc:
        typer.echo(f"error: cannot serve metrics on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None


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
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Run task workers (and, by default, a callback dispatcher) without the API.

    They share the API's database (REELGATE_DATABASE_URL, else reelgate.db in REELGATE_DATA_DIR, default
    ./reelgate-data relative to the current directory): PostgreSQL for processes on several machines. With
    --metrics-port, what this process counts (finished tasks, provider calls, callbacks, lease takeovers, credits
    captured and released) is on /metrics there.
    """
    s = settings()
    if concurrency is not None:
        if concurrency < 1:
            raise typer.BadParameter("must be at least 1", param_hint="--concurrency")
        s = s.with_changes(worker_concurrency=concurrency)
    metrics_at = _metrics_socket(metrics_host, metrics_port)
    _prepared(s)
    _run_background(s, tasks=True, dispatch=dispatch, metrics_at=metrics_at)


def dispatcher(metrics_port: MetricsPort = None, metrics_host: MetricsHost = "127.0.0.1") -> None:
    """Run only the callback dispatcher."""
    s = settings()
    metrics_at = _metrics_socket(metrics_host, metrics_port)
    _prepared(s)
    _run_background(s, tasks=False, dispatch=True, metrics_at=metrics_at)


def server_commands() -> list[Callable[..., None]]:
    """The commands in the order ``reelgate --help`` lists them."""
    return [migrate, serve, worker, dispatcher]
