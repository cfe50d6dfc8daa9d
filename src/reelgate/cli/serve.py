"""Commands that run Reelgate: ``reelgate serve | worker | dispatcher | migrate``."""

from __future__ import annotations

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

from reelgate.cli.background import DISPATCH_ENV, run_background
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


WorkerProcessCount = Annotated[
    int | None,
    typer.Option("--worker-processes", metavar="N", show_default=False, min=0,
                 help="Processes that run tasks (default: REELGATE_WORKER_PROCESSES, else one per CPU); "
                      "0 runs them inside the API process."),
]  # fmt: skip


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="API processes.")] = 1,
    worker_processes: WorkerProcessCount = None,
    no_tasks: Annotated[bool, typer.Option("--no-tasks", help="Serve the API only; run no workers.")] = False,
) -> None:
    """Run the API, the task workers and the callback dispatcher.

    Tasks run in worker processes that serve starts and restarts (one per CPU by default, each also delivering
    callbacks); the API process only answers requests. The database: REELGATE_DATABASE_URL, else reelgate.db in
    REELGATE_DATA_DIR (default: ./reelgate-data, relative to the current directory), migrated first. /metrics is on
    the API's port and adds up every process of this serve.
    """
    s = settings()
    processes = 0 if no_tasks else task_processes(s, worker_processes)
    # Before anything imports prometheus_client (checking the providers does): it reads the directory on import.
    with _shared_metrics_dir(workers + processes):
        _prepared(s)
        if not s.public_base_url:
            os.environ["REELGATE_PUBLIC_BASE_URL"] = f"http://{host}:{port}"
        if no_tasks or processes:
            os.environ["REELGATE_SERVE_NO_TASKS"] = "1"  # the API processes run no worker and no dispatcher
        with _terminated_gracefully(), _worker_processes(processes):
            _run_api(host, port, workers)


class _Terminated(Exception):
    """SIGTERM, raised in the main thread so that cleanup (stopping worker processes) runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


@contextlib.contextmanager
def _terminated_gracefully() -> Iterator[None]:
    """Let the blocks inside unwind on SIGTERM, then end by SIGTERM as before. Uvicorn handles SIGTERM while it
    serves and re-raises it once it has shut down; with the default action the process would die right there,
    before the worker processes are stopped and their wake directory removed."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    terminated = False
    try:
        yield
    except _Terminated:
        terminated = True
    finally:
        signal.signal(signal.SIGTERM, previous)
    if terminated:
        signal.raise_signal(signal.SIGTERM)


def _run_api(host: str, port: int, workers: int) -> None:
    import uvicorn

    from reelgate.api.server import BoundedHttpToolsProtocol

    uvicorn.run(
        "reelgate.runtime:app_from_env", factory=True, host=host, port=port,
        workers=workers if workers > 1 else None, loop="uvloop", http=BoundedHttpToolsProtocol, access_log=False,
        log_config=None, timeout_keep_alive=30, timeout_graceful_shutdown=10, backlog=2048, limit_concurrency=4096,
    )  # fmt: skip


def task_processes(s: Settings, given: int | None) -> int:
    """How many worker processes to start: the option, else the setting; -1 (auto) is one per usable CPU."""
    from reelgate.media.pool import cpu_count

    count = s.worker_processes if given is None else given
    return cpu_count() if count < 0 else count


@contextlib.contextmanager
def _worker_processes(count: int, *, wake: bool = True) -> Iterator[None]:
    """Start ``count`` worker processes (none for 0), and stop them when the block ends. ``wake``: the API of this
    process wakes them through a private wake directory (reelgate.wakeup)."""
    from reelgate.supervisor import WorkerProcesses
    from reelgate.wakeup import ENV as WAKE_ENV
    from reelgate.wakeup import wake_root

    if count <= 0:
        yield
        return
    with contextlib.ExitStack() as stack:  # unwound in reverse: processes stopped, then the directory removed
        if wake:
            wake_dir = tempfile.TemporaryDirectory(prefix="reelgate-wake-", dir=wake_root())
            os.environ[WAKE_ENV] = stack.enter_context(wake_dir)
            stack.callback(os.environ.pop, WAKE_ENV, None)
        children = WorkerProcesses(count, dict(os.environ), on_exit=_forget_metrics)
        children.start()
        stack.callback(children.stop)
        yield


def _forget_metrics(pid: int) -> None:
    """A worker process's live gauges leave the sums once it has exited (prometheus_client's multiprocess mode)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _shared_metrics_dir(processes: int) -> Iterator[None]:
    """Where serve's processes add up their metrics, so a scrape of any API process answers for all (a scrape of
    one port reaches one process at random; tasks finish in the worker processes): PROMETHEUS_MULTIPROC_DIR when
    set (emptied of an earlier run's files first, as prometheus_client requires), else, with more than one process,
    a temporary directory removed after. Set in the environment before the processes start, since prometheus_client
    reads it once, on import."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield
        return
    if processes <= 1:  # one process: its own registry is the sum
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


def _metrics_socket(host: str, port: int | None, *, summed: bool = False) -> socket.socket | None:
    """The --metrics-port socket, bound before any work starts: a port in use is one error line and exit 2."""
    if port is None:
        return None
    from reelgate.api.metrics_app import bind

    if os.environ.get(MULTIPROC_ENV) and not summed:  # summed: the directory is this command's own
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
            help="Tasks run at once by each process (default: REELGATE_WORKER_CONCURRENCY, else 4).",
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            show_default=False,
            min=0,
            help="Worker processes (default: REELGATE_WORKER_PROCESSES, else one per CPU); 1 or 0 runs "
            "the worker in this process.",
        ),
    ] = None,  # fmt: skip
    dispatch: Annotated[bool, typer.Option(help="Also deliver callbacks from these processes.")] = True,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Run task workers (and, by default, a callback dispatcher) without the API.

    They share the API's database (REELGATE_DATABASE_URL, else reelgate.db in REELGATE_DATA_DIR, default
    ./reelgate-data relative to the current directory): PostgreSQL for processes on several machines. With several
    processes this one starts them, restarts any that dies, and stops them on SIGINT or SIGTERM. With
    --metrics-port, what they count (finished tasks, provider calls, callbacks, lease takeovers, credits captured
    and released), added up, is on /metrics there.
    """
    s = settings()
    if concurrency is not None:
        if concurrency < 1:
            raise typer.BadParameter("must be at least 1", param_hint="--concurrency")
        s = s.with_changes(worker_concurrency=concurrency)
        os.environ["REELGATE_WORKER_CONCURRENCY"] = str(concurrency)  # the worker processes read the environment
    count = task_processes(s, processes)
    if count <= 1:
        metrics_at = _metrics_socket(metrics_host, metrics_port)
        _prepared(s)
        run_background(s, tasks=True, dispatch=dispatch, metrics_at=metrics_at)
        return
    os.environ[DISPATCH_ENV] = "1" if dispatch else "0"
    # With --metrics-port this process serves the sum of its worker processes' metrics.
    with _shared_metrics_dir(count + 1 if metrics_port else 0):
        metrics_at = _metrics_socket(metrics_host, metrics_port, summed=True)
        _prepared(s)
        with _worker_processes(count, wake=False):
            run_background(s, tasks=False, dispatch=False, metrics_at=metrics_at)


def dispatcher(metrics_port: MetricsPort = None, metrics_host: MetricsHost = "127.0.0.1") -> None:
    """Run only the callback dispatcher."""
    s = settings()
    metrics_at = _metrics_socket(metrics_host, metrics_port)
    _prepared(s)
    run_background(s, tasks=False, dispatch=True, metrics_at=metrics_at)


def server_commands() -> list[Callable[..., None]]:
    """The commands in the order ``reelgate --help`` lists them."""
    return [migrate, serve, worker, dispatcher]
