"""The callback dispatcher: claims due deliveries fairly across accounts, POSTs them signed to a checked, pinned
address under one hard deadline, and retries 1/2/4 s."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx
import orjson

from reelgate import netguard
from reelgate.callbacks import signed_headers
from reelgate.config import Settings
from reelgate.errors import StoreUnavailable
from reelgate.identity import process_name
from reelgate.liveness import Heartbeat
from reelgate.metrics import Metrics
from reelgate.store.deliveries import Attempt, DueDelivery
from reelgate.store.sql import Store

log = logging.getLogger("reelgate.dispatcher")

# What is read of a receiver's reply: enough for the operator log; the status line alone decides the outcome.
REPLY_EXCERPT_BYTES = 4096
LOGGED_REPLY_CHARS = 300
DEFAULT_CONCURRENCY = 64  # attempts in flight per dispatcher; one account may hold callback_account_concurrency


def callback_client(settings: Settings, resolver: netguard.Resolver | None = None) -> httpx.AsyncClient:
    verify: ssl.SSLContext | bool = True
    if settings.callback_ca_bundle:
        verify = ssl.create_default_context(cafile=settings.callback_ca_bundle)
    transport = netguard.guarded_transport(allow_private=settings.allow_private_networks, resolver=resolver,
                                           verify=verify, connect_timeout=settings.callback_timeout)  # fmt: skip
    return httpx.AsyncClient(transport=transport, follow_redirects=False, timeout=settings.callback_timeout,
                             headers={"user-agent": "reelgate-webhooks/1"})  # fmt: skip


def retry_at(delays: Sequence[float], attempt: int, failed_at: float) -> float | None:
    """When to send again after attempt number ``attempt`` (from 1) failed at ``failed_at``; None after the last."""
    return None if attempt > len(delays) else failed_at + delays[attempt - 1]


@dataclass(frozen=True)
class Reply:
    status_code: int | None
    error: str | None  # shown to the tenant in the delivery log: generic, never our addresses or resolver's words
    detail: str | None = None  # for the operator log only


class Dispatcher:
    """Any number of dispatchers may share one database: a lease on each delivery prevents double sends, and the
    claim keeps each account to ``callback_account_concurrency`` attempts in flight (exact on SQLite; on PostgreSQL
    dispatchers claiming at the same instant may each fill it once, so at most that many times the cap)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        metrics: Metrics | None = None,
        resolver: netguard.Resolver | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.client = callback_client(settings, resolver)
        self.concurrency = concurrency
        self.per_account = settings.callback_account_concurrency
        self.name = name or process_name("dispatcher")
        self.wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._held: Counter[int] = Counter()  # this dispatcher's attempts in flight, per account

    async def run(self, stop: asyncio.Event) -> None:
        heartbeat = Heartbeat(self.store.processes, process_id=self.name, kind="dispatcher",
                              concurrency=self.concurrency, in_hand=lambda: len(self._running),
                              every=self.settings.heartbeat_seconds)  # fmt: skip
        heartbeat.start(stop)
        try:
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
        finally:
            await heartbeat.finish()

    async def _idle_time(self) -> float:
        if len(self._running) >= self.concurrency:
            return 1.0  # an attempt that ends sets ``wake``
        # Deliveries of an account at its cap are not due for us: the end of one of its attempts wakes us (ours) or
        # the 1 s poll finds it (another dispatcher's). Counting them would spin this loop on claims that get nothing.
        due = await self.store.deliveries.next_due(time.time(), self.per_account)
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
        claimed = await self.store.deliveries.claim(self.name, time.time(), lease, free, per_account=self.per_account)
        for due in claimed:
            self._held[due.account_id] += 1
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
        finally:
            self._release(due.account_id)

    def _release(self, account_id: int) -> None:
        # Claim at once only when this attempt held a place that was full (the dispatcher's or its account's); any
        # other end frees nothing a claim was waiting for, and waking on every delivery would run a claim for each.
        full = len(self._running) >= self.concurrency or self._held[account_id] >= self.per_account
        self._held[account_id] -= 1
        if self._held[account_id] <= 0:
            del self._held[account_id]
        if full:
            self.wake.set()

    async def _attempt(self, due: DueDelivery) -> None:
        task = await self.store.tasks.get(due.task_id)
        if task is None:
            return
        body = orjson.dumps(task.public())
        secret = await self.store.accounts.webhook_secret(due.account_id)
        started = time.time()
        headers = signed_headers(secret, due.id, int(started), body)
        reply = await self._post(due.url, body, headers)
        latency = (time.time() - started) * 1000
        number = due.attempts + 1
        outcome: Literal["delivered", "retry", "dead"] = "delivered"
        next_attempt = None
        if reply.error is not None:
            next_attempt = retry_at(self.settings.callback_retry_delays, number, time.time())
            outcome = "dead" if next_attempt is None else "retry"
        attempt = Attempt(due.id, number, started, latency, reply.status_code, reply.error, outcome, next_attempt)
        await self.store.deliveries.record(attempt, self.name)
        if next_attempt is not None:
            # The run loop may have gone to sleep for up to 1 s while this attempt was in flight, before the retry
            # was stored: wake it to sleep until the retry instead (a record slow to commit made a 1 s retry 1.56 s).
            self.wake.set()
        self._observe(outcome, task.id, number, reply)
        if outcome == "delivered" and self.metrics is not None:
            self.metrics.callback_latency.observe(time.time() - due.created)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        """One attempt, resolve to last byte read, within ``callback_timeout``; the reply body is read for a few KiB
        at most (a receiver answering 200 with an endless or trickling body must cost neither memory nor time)."""
        status: int | None = None
        excerpt = b""
        failure: Exception | None = None
        try:
            async with asyncio.timeout(self.settings.callback_timeout):
                async with self.client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    excerpt = await _read_excerpt(response)
        except TimeoutError:
            pass
        except (netguard.BlockedAddress, httpx.HTTPError) as exc:
            failure = exc
        if status is None:
            if failure is None:
                return Reply(None, f"timeout after {self.settings.callback_timeout:g} s")
            return Reply(None, public_reason(failure), _detail(failure))
        # Past the status line, a body that is slow, endless or broken changes nothing: the receiver has answered.
        if 200 <= status < 300:
            return Reply(status, None)
        return Reply(status, f"HTTP {status}", excerpt.decode("utf-8", "replace")[:LOGGED_REPLY_CHARS])

    def _observe(self, outcome: str, task_id: str, number: int, reply: Reply) -> None:
        log.info("callback attempt", extra={"task_id": task_id, "attempt": number, "outcome": outcome,
                                            "status_code": reply.status_code, "error": reply.error,
                                            "detail": reply.detail})  # fmt: skip
        if self.metrics is not None:
            self.metrics.callback_attempts.labels(outcome).inc()


async def _read_excerpt(response: httpx.Response) -> bytes:
    """At most REPLY_EXCERPT_BYTES of the body (raw: never decompressed); the rest is never read."""
    excerpt = b""
    async for chunk in response.aiter_raw():
        excerpt += chunk
        if len(excerpt) >= REPLY_EXCERPT_BYTES:
            break  # closing the response without reading on drops the connection instead of draining it
    return excerpt[:REPLY_EXCERPT_BYTES]


def public_reason(exc: BaseException) -> str:
    """The delivery log's reason for a failure before any answer: what the tenant can act on, in fixed words.

    Resolver errors, resolved addresses and socket errno text describe our network and resolver, not the tenant's
    URL (a name resolving to 10.0.0.7 would tell them what we can reach): those go to the operator log only.
    """
    if isinstance(exc, netguard.BlockedAddress):
        if exc.address is None:
            return "could not resolve the host"
        return "refused: the host resolves to a non-public address"
    if _caused_by(exc, socket.gaierror) is not None:
        return "could not resolve the host"
    cert = _caused_by(exc, ssl.SSLCertVerificationError)
    if isinstance(cert, ssl.SSLCertVerificationError):
        # OpenSSL's fixed vocabulary about the tenant's own certificate ("certificate has expired", ...).
        return f"TLS error: certificate verify failed ({cert.verify_message})"
    if _caused_by(exc, ssl.SSLError) is not None:
        return "TLS error: the handshake failed"
    if isinstance(exc, httpx.ConnectTimeout):
        return "could not connect to the host: timed out"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect to the host"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the host closed the connection or sent an invalid HTTP response"
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout: {type(exc).__name__}"
    return "the connection failed"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _detail(exc: BaseException) -> str:
    """The whole cause chain, for the operator: resolver errors and addresses included."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 5:
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)[:1000]
