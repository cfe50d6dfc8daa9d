"""A process pool for CPU-heavy media work (Base64 decoding, image and video inspection), fair across accounts.

Decoding and inspecting 40 MB of images takes about a second of CPU. On the event loop, or on a thread of the API
process (which holds the GIL for most of it), it stalls every other tenant's requests; here it runs in other
processes, at a lower CPU priority than the API, so the API process stays responsive on a busy machine.

Admission, per API process (docs/uploads.md):

- per account: at most ``per_account`` jobs at once; more wait their turn, first come first served, as long as the
  account's waiting payloads total at most ``waiting_bytes`` (one largest request body). Beyond that, or after
  ``wait`` seconds, a request is answered ``429 too_many_concurrent_uploads`` at once: one tenant can neither park
  bodies in memory without bound nor hold more than its few places.
- in all: at most ``processes`` jobs at once (one per process); the rest wait, a request up to ``wait`` seconds,
  then ``503 media_busy`` with ``Retry-After``. A freed process goes to the waiting account that holds the fewest,
  round-robin among equals, first come first served within an account (media/fair.py): an account that holds no
  process gets the next one to free, whatever another has queued.
- background work (``patient=True``, the worker's media work) waits as long as it takes, in the same fair turns,
  so one tenant's hundred queued elements wait behind another tenant's one, not the other way round.

The processes start on the first job (a deployment that never gets Base64 never starts them) and stop in
``aclose``. A payload (a request body, an image) travels through shared memory, copied in slices between which
the event loop runs, instead of being pickled whole while the GIL is held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any, TypeVar

from reelgate.config import Settings
from reelgate.errors import RateLimited, ServiceUnavailable
from reelgate.media.fair import FairGate

T = TypeVar("T")
log = logging.getLogger("reelgate.media")
COPY_SLICE = 1024 * 1024  # bytes copied into shared memory between two turns of the event loop
WORKER_NICENESS = 10


def cpu_count() -> int:
    """CPUs this process may run on (its affinity, e.g. a container's cpuset), not the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _start_worker() -> None:
    # Media work yields the CPU to the API process; Ctrl-C goes to the server, which stops the pool itself.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _with_payload(fn: Callable[..., T], name: str, size: int, args: tuple[Any, ...]) -> T:
    """In a pool process: read the payload from shared memory, then run ``fn(payload, *args)``."""
    block = shared_memory.SharedMemory(name=name)
    try:
        payload = bytes(_buffer(block)[:size])
    finally:
        block.close()
    return fn(payload, *args)


async def _acquire(place: Awaitable[object], timeout: float | None, busy: Callable[[], Exception]) -> None:
    """Wait for a place, for ever or up to ``timeout`` seconds (then ``busy()`` is raised, and no place is held)."""
    try:
        async with asyncio.timeout(timeout):
            await place
    except TimeoutError:
        raise busy() from None


def _pool_busy() -> ServiceUnavailable:
    return ServiceUnavailable("every media checker is busy; retry shortly", code="media_busy",
                              headers={"Retry-After": "5"})  # fmt: skip


def _buffer(block: shared_memory.SharedMemory) -> memoryview:
    if block.buf is None:  # only after close()
        raise ValueError(f"shared memory {block.name} is closed")
    return block.buf


@dataclass
class _Account:
    """One account's places: ``per_account`` jobs at once, then a queue of at most ``waiting_bytes`` of payload."""

    gate: asyncio.Semaphore
    users: int = 0  # jobs running or waiting
    waiting: int = 0  # payload bytes waiting for a place


class MediaPool:
    """Runs module-level functions in a lazily started process pool, with a bound per account and in all."""

    def __init__(self, processes: int, per_account: int, waiting_bytes: int, wait: float = 10.0) -> None:
        self.processes = max(1, processes)
        self.per_account = max(1, per_account)
        self.waiting_bytes = waiting_bytes
        self.wait = wait
        self._executor: ProcessPoolExecutor | None = None
        self._processes = FairGate(self.processes)  # one place per process, fair across accounts
        self._accounts: dict[int, _Account] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaPool:
        # An account may have one largest body waiting besides those being checked.
        return cls(settings.media_processes or cpu_count(), settings.uploads_per_account, settings.max_body_bytes)

    @property
    def started(self) -> bool:
        return self._executor is not None

    async def run(self, account_id: int, fn: Callable[..., T], *args: Any, payload: bytes | None = None,
                  patient: bool = False) -> T:  # fmt: skip
        """``fn(*args)`` (or ``fn(payload, *args)``) in a pool process, once the account and the pool admit it.

        A request (``patient=False``) is refused rather than queued beyond the bounds (429, 503); background work
        (``patient=True``) waits for as long as it takes."""
        size = 0 if payload is None else len(payload)
        async with self._account_place(account_id, size, patient), self._process_place(account_id, patient):
            if payload is None:
                return await self._submit(fn, *args)
            return await self._run_with_payload(fn, payload, args)

    @contextlib.asynccontextmanager
    async def _account_place(self, account_id: int, size: int, patient: bool) -> AsyncIterator[None]:
        account = self._accounts.setdefault(account_id, _Account(asyncio.Semaphore(self.per_account)))
        queued = size if account.gate.locked() else 0
        if queued and not patient and account.waiting + queued > self.waiting_bytes:
            raise self._account_busy()
        account.users += 1
        account.waiting += queued
        try:
            try:
                await _acquire(account.gate.acquire(), None if patient else self.wait, self._account_busy)
            finally:
                account.waiting -= queued
            try:
                yield
            finally:
                account.gate.release()
        finally:
            account.users -= 1
            if not account.users:  # nobody runs or waits: forget the account
                del self._accounts[account_id]

    def _account_busy(self) -> RateLimited:
        return RateLimited(f"this account already has {self.per_account} uploads being checked and more waiting; "
                           "send the next when one is answered", code="too_many_concurrent_uploads",
                           headers={"Retry-After": "1"})  # fmt: skip

    @contextlib.asynccontextmanager
    async def _process_place(self, account_id: int, patient: bool) -> AsyncIterator[None]:
        await _acquire(self._processes.acquire(account_id), None if patient else self.wait, _pool_busy)
        try:
            yield
        finally:
            self._processes.release(account_id)

    async def _run_with_payload(self, fn: Callable[..., T], payload: bytes, args: tuple[Any, ...]) -> T:
        block = shared_memory.SharedMemory(create=True, size=max(1, len(payload)))
        source, target = memoryview(payload), _buffer(block)
        try:
            for start in range(0, len(payload), COPY_SLICE):
                target[start : start + COPY_SLICE] = source[start : start + COPY_SLICE]
                await asyncio.sleep(0)  # other requests get the loop (and the GIL) between slices
            return await self._submit(_with_payload, fn, block.name, len(payload), args)
        finally:
            target.release()
            block.close()
            block.unlink()

    async def _submit(self, fn: Callable[..., T], *args: Any) -> T:
        executor = self._start()
        try:
            # submit() may start a process, which waits for the fork server (a second or so the first time, while
            # it imports the media libraries): on a thread, so the event loop never waits for it.
            future = await asyncio.to_thread(executor.submit, fn, *args)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            # A process died (killed, out of memory): every job it had fails; the next one starts a new pool.
            log.error("a media process died; restarting the media pool")
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            raise ServiceUnavailable("the media checker failed; retry shortly", code="media_unavailable",
                                     headers={"Retry-After": "5"}) from None  # fmt: skip

    def _start(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # forkserver: workers fork from a small clean server, not from this threaded process.
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            if method == "forkserver":
                context.set_forkserver_preload(["reelgate.catalog.submit"])  # by name: media sits below the catalog
            self._executor = ProcessPoolExecutor(self.processes, mp_context=context, initializer=_start_worker)
            log.info("media pool started", extra={"processes": self.processes, "start_method": method})
        return self._executor

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
