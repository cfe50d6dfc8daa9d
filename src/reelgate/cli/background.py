"""Running workers and dispatchers until told to stop: in this process, or as one of serve's worker processes.

``python -m reelgate.cli.background`` is the entry point of a worker process that ``serve`` or ``worker`` started
(reelgate.supervisor): settings from the environment it inherited, no migration (its parent migrated), a worker and
a callback dispatcher, media work on this process's own threads, and wake-ups from the API through the shared wake
directory (reelgate.wakeup).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from reelgate.config import Settings

log = logging.getLogger("reelgate")
DISPATCH_ENV = "REELGATE_WORKER_DISPATCH"  # "0": worker processes of `worker --no-dispatch` deliver no callbacks


def run_background(s: Settings, *, tasks: bool, dispatch: bool, metrics_at: socket.socket | None,
                   own_process: bool = False) -> None:  # fmt: skip
    """Run workers and/or a dispatcher until SIGINT or SIGTERM; running tasks are left to expire their leases.
    With ``metrics_at``, serve /metrics there meanwhile. ``own_process``: this is a worker process of serve or
    worker, whose media work runs on its own threads (it has a core to itself) rather than in a media pool."""
    import uvloop

    from reelgate.api.metrics_app import metrics_app, serve_metrics
    from reelgate.health import Thresholds, backlog_reader
    from reelgate.heap import freeze_startup_objects
    from reelgate.metrics import BacklogGauges
    from reelgate.runtime import build_runtime, listen_for_wakeups

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        rt = build_runtime(s, worker=tasks, dispatcher=dispatch, media_pool_for_tasks=not own_process)
        await rt.start()
        listener = listen_for_wakeups(rt)
        serving: asyncio.Task[None] | None = None
        if metrics_at is not None:
            gauges = BacklogGauges(rt.metrics, backlog_reader(rt.store, Thresholds.from_settings(s)))
            app = metrics_app(rt.metrics, gauges, s.metrics_token)
            serving = asyncio.create_task(serve_metrics(app, metrics_at, stop))
            host, port = metrics_at.getsockname()[:2]
            log.info("serving metrics", extra={"url": f"http://{host}:{port}/metrics"})
        freeze_startup_objects()
        await stop.wait()
        if listener is not None:
            listener.close()
        if serving is not None:
            await serving  # no scrape reads a store being closed
        await rt.close()

    uvloop.run(runner())


def main() -> None:
    """A worker process of serve or worker: runs tasks and delivers callbacks until its supervisor stops it."""
    from reelgate.logs import configure
    from reelgate.supervisor import stop_with_parent

    stop_with_parent()
    s = Settings.from_env()
    configure(s.log_level, s.log_json, access=False)
    dispatch = os.environ.get(DISPATCH_ENV, "1") != "0"
    run_background(s, tasks=True, dispatch=dispatch, metrics_at=None, own_process=True)


if __name__ == "__main__":
    main()
