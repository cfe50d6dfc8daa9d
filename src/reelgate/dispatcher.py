"""The callback dispatcher: claims due deliveries, POSTs them signed to a checked, pinned address, retries 1/2/4 s."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Literal

import httpx
import orjson

from reelgate import netguard
from reelgate.callbacks import signed_headers
from reelgate.config import Settings
from reelgate.errors import StoreUnavailable
from reelgate.identity import process_name
from reelgate.metrics import Metrics
from reelgate.store.deliveries import Attempt, DueDelivery
from reelgate.store.sql import Store

log = logging.getLogger("reelgate.dispatcher")


def callback_client(settings: Settings, resolver: netguard.Resolver | None = None) -> httpx.AsyncClient:
    verify: ssl.SSLContext | bool = True
    if settings.callback_ca_bundle:
        verify = ssl.create_default_context(cafile=settings.callback_ca_bundle)
    transport = netguard.guarded_transport(allow_private=settings.allow_private_networks, resolver=resolver,
                                           verify=verify, connect_timeout=settings.callback_timeout)  # fmt: skip
    return httpx.AsyncClient(transport=transport, follow_redirects=False, timeout=settings.callback_timeout,
                             headers={"user-agent": "reelgate-webhooks/1"})  # fmt: skip


class Dispatcher:
    """Any number of dispatchers may share one database: a lease on each delivery prevents double sends."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        metrics: Metrics | None = None,
        resolver: netguard.Resolver | None = None,
        concurrency: int = 32,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.client = callback_client(settings, resolver)
        self.concurrency = concurrency
        self.name = name or process_name("dispatcher")
        self.wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._tick()
                delay = await self._idle_time()
            except StoreUnavailable as exc:
                log.warning("database unavailable; dispatcher pausing", extra={"error": str(exc)})
                delay = 1.0
            await self._sleep(stop, delay)
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        await self.client.aclose()

    async def _idle_time(self) -> float:
        if len(self._running) >= self.concurrency:
            return 0.05
        due = await self.store.deliveries.next_due()
        return 1.0 if due is None else min(1.0, max(0.0, due - time.time()))

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        if seconds <= 0:
            return
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            self.wake.clear()

    async def _tick(self) -> None:
        free = self.concurrency - len(self._running)
        if free <= 0:
            return
        lease = self.settings.callback_timeout + 10
        for due in await self.store.deliveries.claim(self.name, time.time(), lease, free):
            task = asyncio.create_task(self._deliver(due))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _deliver(self, due: DueDelivery) -> None:
        try:
            await self._attempt(due)
        except StoreUnavailable as exc:
            log.warning("could not record a callback attempt; it will be retried", extra={"task_id": due.task_id,
                                                                                        "error": str(exc)})  # fmt: skip
        except Exception:
            log.exception("callback attempt crashed; lease will expire and it will be retried",
                          extra={"task_id": due.task_id})  # fmt: skip

    async def _attempt(self, due: DueDelivery) -> None:
        task = await self.store.tasks.get(due.task_id)
        if task is None:
            return
        body = orjson.dumps(task.public())
        secret = await self.store.accounts.webhook_secret(due.account_id)
        started = time.time()
        headers = signed_headers(secret, due.id, int(started), body)
        status_code, error = await self._post(due.url, body, headers)
        latency = (time.time() - started) * 1000
        number = due.attempts + 1
        outcome: Literal["delivered", "retry", "dead"] = "delivered" if error is None else "retry"
        next_attempt = None
        if error is not None:
            delays = self.settings.callback_retry_delays
            if number > len(delays):
                outcome = "dead"
            else:
                next_attempt = time.time() + delays[number - 1]
        attempt = Attempt(due.id, number, started, latency, status_code, error, outcome, next_attempt)
        await self.store.deliveries.record(attempt, self.name)
        if next_attempt is not None:
            # The run loop may have gone to sleep for up to 1 s while this attempt was in flight, before the retry
            # was stored: wake it to sleep until the retry instead (a record slow to commit made a 1 s retry 1.56 s).
            self.wake.set()
        self._observe(outcome, task.id, number, status_code, error)
        if outcome == "delivered" and self.metrics is not None:
            self.metrics.callback_latency.observe(time.time() - due.created)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        try:
            async with asyncio.timeout(self.settings.callback_timeout):
                response = await self.client.post(url, content=body, headers=headers)
        except TimeoutError:
            return None, f"timeout after {self.settings.callback_timeout:g} s"
        except netguard.BlockedAddress as exc:
            return None, f"refused: {exc}"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    def _observe(self, outcome: str, task_id: str, number: int, code: int | None, error: str | None) -> None:
        log.info("callback attempt", extra={"task_id": task_id, "attempt": number, "outcome": outcome,
                                            "status_code": code, "error": error})  # fmt: skip
        if self.metrics is not None:
            self.metrics.callback_attempts.labels(outcome).inc()
