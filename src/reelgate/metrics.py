"""Prometheus metrics on a registry of our own (nothing global), updated by the API, workers and dispatcher."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger("reelgate.metrics")
QUEUE_STATS_MAX_AGE = 5.0  # seconds the queue gauges may be old: at most one database read per this, per process
QueueReader = Callable[[float], Awaitable[tuple[int, float]]]  # now -> (tasks due, age of the oldest due)

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.tasks_submitted = Counter("reelgate_tasks_submitted", "Tasks created", ["model"], registry=r)
        self.tasks_finished = Counter(
            "reelgate_tasks_finished", "Tasks that reached a terminal state", ["model", "status", "code"], registry=r
        )
        self.request_latency = Histogram(
            "reelgate_request_seconds", "API latency by route", ["route", "status"], buckets=_FAST, registry=r
        )
        self.queue_depth = Gauge("reelgate_queue_depth", "Tasks due and not leased", registry=r)
        self.oldest_due = Gauge("reelgate_queue_oldest_due_seconds", "Age of the oldest due task", registry=r)
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
        return generate_latest(self.registry)


class QueueGauges:
    """``reelgate_queue_depth`` and ``reelgate_queue_oldest_due_seconds`` read from the database at most once per
    ``QUEUE_STATS_MAX_AGE`` however often ``/metrics`` is scraped: concurrent scrapes share one read, and a scrape
    flood costs no ``COUNT`` per request. Between reads the oldest task's age grows with the clock."""

    def __init__(self, metrics: Metrics, read: QueueReader) -> None:
        self._metrics = metrics
        self._read = read
        self._tried_at = -float("inf")  # time.monotonic() of the last read, whatever its outcome
        self._read_at = 0.0  # ... and of the last one that answered: the age below is as of then
        self._depth, self._age = 0, 0.0
        self._reading: asyncio.Future[None] | None = None

    async def update(self) -> None:
        """Set both gauges, reading the database first when the last read is older than the limit."""
        if self._reading is None and time.monotonic() - self._tried_at >= QUEUE_STATS_MAX_AGE:
            self._reading = asyncio.ensure_future(self._read_once())
        if self._reading is not None:
            await asyncio.shield(self._reading)  # a scrape that goes away does not cancel the others' read
        age = self._age + (time.monotonic() - self._read_at) if self._depth else 0.0
        self._metrics.queue_depth.set(self._depth)
        self._metrics.oldest_due.set(age)

    async def _read_once(self) -> None:
        try:
            self._depth, self._age = await self._read(time.time())
            self._read_at = time.monotonic()
        except Exception as exc:  # the page still answers with what this process knows; tried again after the limit
            log.warning("queue stats unavailable", extra={"error": type(exc).__name__})
        finally:
            self._tried_at = time.monotonic()
            self._reading = None
