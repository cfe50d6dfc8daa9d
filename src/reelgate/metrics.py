"""Prometheus metrics on a registry of our own (nothing global), updated by the API, workers and dispatcher.

Every process that runs work exposes what it counted: the API on its own port, ``reelgate worker`` and
``reelgate dispatcher`` with ``--metrics-port``; Prometheus tells them apart by their ``instance``. ``serve
--workers N`` is N processes behind one port, where a scrape reaches one of them at random: there the processes
share prometheus_client's multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``, set by ``serve``) and any one of
them answers with the sum over all N, so every scrape reads the same totals. Gauges read from the database (queue,
workers alive, stalled) are the same number from every process: aggregate them with ``max``, never ``sum``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

log = logging.getLogger("reelgate.metrics")
QUEUE_STATS_MAX_AGE = 5.0  # seconds the queue gauges may be old: at most one database read per this, per process
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own name: it reads it when first imported
PROCESS_KINDS = ("worker", "dispatcher")
# In multiprocess mode a gauge set from the database is the value of the process that read it last; the processes
# that stopped cleanly drop out (``close``).
_FROM_DATABASE: Final = "livemostrecent"

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Backlog(Protocol):
    """What the database says about the work waiting and who runs it, as of one read (``health.Health``)."""

    @property
    def queue_depth(self) -> int: ...  # tasks due and not leased

    @property
    def oldest_waiting_seconds(self) -> float: ...  # how long the oldest of them has waited

    @property
    def stalled(self) -> bool: ...  # no worker alive, or the oldest waiting task older than stall_seconds

    @property
    def stall_seconds(self) -> float: ...

    def alive(self, kind: str) -> int: ...  # processes of the kind that heartbeated within the liveness threshold


BacklogReader = Callable[[float], Awaitable[Backlog]]  # now -> the backlog as of now


class Metrics:
    """This process's metrics. With ``multiprocess_dir`` (default: ``PROMETHEUS_MULTIPROC_DIR``, which ``serve
    --workers N`` sets for its processes) ``render`` answers with the sum over every process writing to it."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir or os.environ.get(MULTIPROC_ENV) or None
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.tasks_submitted = Counter("reelgate_tasks_submitted", "Tasks created", ["model"], registry=r)
        self.tasks_finished = Counter(
            "reelgate_tasks_finished", "Tasks that reached a terminal state", ["model", "status", "code"], registry=r
        )
        self.request_latency = Histogram(
            "reelgate_request_seconds", "API latency by route", ["route", "status"], buckets=_FAST, registry=r
        )
        self.queue_depth = Gauge("reelgate_queue_depth", "Tasks due and not leased", registry=r,
                                 multiprocess_mode=_FROM_DATABASE)  # fmt: skip
        self.oldest_due = Gauge("reelgate_queue_oldest_due_seconds", "Age of the oldest due task", registry=r,
                                multiprocess_mode=_FROM_DATABASE)  # fmt: skip
        self.workers_alive = Gauge(
            "reelgate_workers_alive", "Processes that heartbeated within REELGATE_LIVENESS_SECONDS, by kind",
            ["kind"], registry=r, multiprocess_mode=_FROM_DATABASE,
        )  # fmt: skip
        self.backlog_stalled = Gauge(
            "reelgate_backlog_stalled", "1 when no worker is alive or the oldest waiting task is older than "
            "REELGATE_STALL_SECONDS", registry=r, multiprocess_mode=_FROM_DATABASE,
        )  # fmt: skip
        self.lease_takeovers = Counter("reelgate_lease_takeovers", "Tasks claimed after a lease expired", registry=r)
        self.provider_latency = Histogram(
            "reelgate_provider_call_seconds", "Provider run latency", ["provider"], buckets=_SLOW, registry=r
        )
        self.provider_errors = Counter(
            "reelgate_provider_errors", "Provider failures by task error code", ["provider", "code"], registry=r
        )
        self.callback_attempts = Counter(
            "reelgate_callback_attempts", "Callback attempts by outcome", ["outcome"], registry=r
        )
        self.callback_latency = Histogram(
            "reelgate_callback_delay_seconds", "Terminal commit to delivered callback", buckets=_SLOW, registry=r
        )
        self.credits = Counter(
            "reelgate_credits", "Credits moved, by ledger kind (reserve/capture/release)", ["kind"], registry=r
        )
        self._submitted: dict[str, Counter] = {}
        self._reserved = self.credits.labels("reserve")

    def task_submitted(self, model: str, price: int) -> None:
        child = self._submitted.get(model)
        if child is None:  # labels() takes a lock and builds a key on every call: once per model is enough
            child = self._submitted[model] = self.tasks_submitted.labels(model)
        child.inc()
        self._reserved.inc(price / 1000)

    def worker_event(self, kind: str, data: dict[str, object]) -> None:
        if kind == "claimed" and data.get("took_over"):
            self.lease_takeovers.inc()
        elif kind == "provider_call":
            self.provider_latency.labels(str(data["provider"])).observe(float(data["seconds"]))  # type: ignore[arg-type]
        elif kind == "provider_error":
            self.provider_errors.labels(str(data["provider"]), str(data["code"])).inc()

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        # Read from the directory at each scrape: every process's latest values, counters and histograms summed.
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def close(self) -> None:
        """This process stops: its database-read gauges leave the multiprocess sums (its counters stay in them)."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


class BacklogGauges:
    """The gauges read from the database (queue depth, oldest waiting task, workers alive, stalled), read at most
    once per ``QUEUE_STATS_MAX_AGE`` however often ``/metrics`` is scraped: concurrent scrapes share one read, and
    a scrape flood costs no ``COUNT`` per request. Between reads the oldest task's age grows with the clock (and
    turns the stalled gauge on when it passes the threshold)."""

    def __init__(self, metrics: Metrics, read: BacklogReader) -> None:
        self._metrics = metrics
        self._read = read
        self._tried_at = -float("inf")  # time.monotonic() of the last read, whatever its outcome
        self._read_at = 0.0  # ... and of the last one that answered: the values below are as of then
        self._last: Backlog | None = None
        self._reading: asyncio.Future[None] | None = None

    async def update(self) -> None:
        """Set the gauges, reading the database first when the last read is older than the limit."""
        if self._reading is None and time.monotonic() - self._tried_at >= QUEUE_STATS_MAX_AGE:
            self._reading = asyncio.ensure_future(self._read_once())
        if self._reading is not None:
            await asyncio.shield(self._reading)  # a scrape that goes away does not cancel the others' read
        last = self._last
        if last is None:  # never read (the database was down from the start): nothing known, nothing claimed
            return
        m = self._metrics
        age = last.oldest_waiting_seconds + (time.monotonic() - self._read_at) if last.queue_depth else 0.0
        m.queue_depth.set(last.queue_depth)
        m.oldest_due.set(age)
        for kind in PROCESS_KINDS:
            m.workers_alive.labels(kind).set(last.alive(kind))
        m.backlog_stalled.set(1 if last.stalled or age > last.stall_seconds else 0)

    async def _read_once(self) -> None:
        try:
            self._last = await self._read(time.time())
            self._read_at = time.monotonic()
        except Exception as exc:  # the page still answers with what this process knows; tried again after the limit
            log.warning("backlog stats unavailable", extra={"error": type(exc).__name__})
        finally:
            self._tried_at = time.monotonic()
            self._reading = None
