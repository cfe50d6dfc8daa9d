"""Workers: claim due tasks with an expiring lease, run them through their provider, heartbeat, and finish."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from reelgate.domain import COMPLETED, FAILED, new_webhook_id
from reelgate.errors import StoreUnavailable, TaskFailure
from reelgate.files import sweep_files
from reelgate.identity import process_name
from reelgate.liveness import Heartbeat
from reelgate.providers import Completed, Failed, Job, Outcome, Pending, Provider
from reelgate.service import TaskService
from reelgate.storage import StorageUnavailable
from reelgate.store.files import FileStore
from reelgate.store.tasks import Claim, Finish

log = logging.getLogger("reelgate.worker")
MAX_ATTEMPTS = 8
ERRORS_KEY = "_worker_errors"
SWEEP_EVERY = 1.0
PURGE_EVERY = 3600.0
HOUR = 3600.0
# A task's progress is written at most this often (its first report at once): each write is a database write
# acknowledged after a fsync of the log, and the local engine reports four times in a few hundred milliseconds.
PROGRESS_EVERY = 0.25
STORAGE_DOWN = "Stored media could not be read or written (the object storage is unreachable); try again later."


class _Context:
    """The JobContext a provider sees: every call writes through the lease, so a lost lease stops the work."""

    def __init__(self, worker: Worker, task_id: str) -> None:
        self._worker = worker
        self._task_id = task_id
        self._progress_at: float | None = None  # time.monotonic() of the last progress written

    async def progress(self, percent: int) -> None:
        now = time.monotonic()
        if self._progress_at is not None and now - self._progress_at < PROGRESS_EVERY:
            return  # the next report (or the terminal 100) says more; a poll meanwhile sees the last one written
        self._progress_at = now
        tasks = self._worker.service.store.tasks
        await tasks.progress(self._task_id, self._worker.name, min(percent, 99), time.time())

    async def save_state(self, state: dict[str, Any], *, cancellable: bool | None = None) -> None:
        tasks = self._worker.service.store.tasks
        if not await tasks.save_state(self._task_id, self._worker.name, state, cancellable):
            raise asyncio.CancelledError("the task is no longer ours")

    async def still_mine(self) -> bool:
        return await self._worker.service.store.tasks.is_held(self._task_id, self._worker.name)


class Worker:
    """Runs up to ``concurrency`` tasks at once; any number of workers may share one database."""

    def __init__(
        self,
        service: TaskService,
        providers: dict[str, Provider],
        *,
        concurrency: int,
        name: str | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.service = service
        self.providers = providers
        self.concurrency = concurrency
        self.name = name or process_name("worker")
        self.settings = service.settings
        self.wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._on_event = on_event or (lambda kind, data: None)
        self._last_sweep = 0.0
        self._last_purge = 0.0
        self._housekeeping: asyncio.Task[dict[str, int]] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker started", extra={"worker": self.name, "concurrency": self.concurrency})
        heartbeat = Heartbeat(self.service.store.processes, process_id=self.name, kind="worker",
                              concurrency=self.concurrency, in_hand=lambda: len(self._running),
                              every=self.settings.heartbeat_seconds)  # fmt: skip
        heartbeat.start(stop)
        try:
            while not stop.is_set():
                try:
                    await self._tick()
                except StoreUnavailable as exc:
                    log.warning("database unavailable; worker pausing", extra={"error": str(exc)})
                    await self._sleep(stop, 1.0)
                    continue
                await self._sleep(stop, self.settings.worker_poll_interval)
            await self._drain()
        finally:
            await heartbeat.finish()

    async def _tick(self) -> None:
        now = time.time()
        if now - self._last_sweep >= SWEEP_EVERY:
            self._last_sweep = now
            await self.service.fail_overdue()
        if now - self._last_purge >= PURGE_EVERY and (self._housekeeping is None or self._housekeeping.done()):
            self._last_purge = now
            # Beside the task loop, so a long sweep (or a slow bucket) never delays claiming tasks.
            self._housekeeping = asyncio.create_task(self.housekeeping())
        free = self.concurrency - len(self._running)
        if free <= 0:
            return
        for claim in await self.service.store.tasks.claim(self.name, now, self.settings.lease_seconds, free):
            self._on_event("claimed", {"took_over": claim.took_over, "model": claim.model})
            task = asyncio.create_task(self._execute(claim))
            self._running.add(task)
            task.add_done_callback(self._done)

    async def housekeeping(self) -> dict[str, int]:
        """The hourly sweep: forget old Idempotency-Keys; remove stored media nothing needs (deleted elements, failed
        or never-made tasks, expired results; never one a live task or element still needs), expired or abandoned
        file API uploads, and writes a killed process never finished. Each part is idempotent and runs even when
        another failed (a bucket that cannot be reached is tried again the next hour); what each removed."""
        storage = self.service.assets.storage
        incomplete_after = self.settings.incomplete_upload_hours * HOUR
        parts: dict[str, Callable[[], Awaitable[int]]] = {
            "idempotency keys": self.service.purge_idempotency,
            "stored media": self.service.sweep_assets,
            "uploaded files": lambda: sweep_files(FileStore(self.service.store.db), storage),
            "unfinished writes": lambda: storage.discard_incomplete(incomplete_after),
        }
        removed: dict[str, int] = {}
        for what, part in parts.items():
            try:
                removed[what] = await part()
            except Exception as exc:
                log.warning("sweep failed; retried next hour", extra={"sweeping": what, "error": str(exc)})
        if any(removed.values()):
            log.info("swept", extra={"removed": removed})
        return removed

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self.wake.set()

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            self.wake.clear()

    async def _drain(self) -> None:
        # On a graceful stop, running tasks are abandoned, not failed: their leases expire and another worker
        # (or this one after a restart) takes them over.
        if self._housekeeping is not None:
            self._housekeeping.cancel()  # idempotent: the next sweep finishes what this one began
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, *filter(None, [self._housekeeping]), return_exceptions=True)

    async def _execute(self, claim: Claim) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(claim.id, asyncio.current_task()))
        try:
            outcome = await self._run_provider(claim)
            await self._apply(claim, outcome)
        except asyncio.CancelledError:
            log.info("task run stopped", extra={"task_id": claim.id})
        except StoreUnavailable as exc:
            log.warning("database unavailable during task; lease will expire", extra={"task_id": claim.id,
                                                                                    "error": str(exc)})  # fmt: skip
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _heartbeat(self, task_id: str, runner: asyncio.Task[Any] | None) -> None:
        interval = max(0.05, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self.service.store.tasks.heartbeat(
                    task_id, self.name, time.time() + self.settings.lease_seconds
                )
            except StoreUnavailable:
                continue
            if not held and runner is not None:
                log.info("lease lost (cancelled or taken over); stopping", extra={"task_id": task_id})
                runner.cancel()
                return

    async def _run_provider(self, claim: Claim) -> Outcome:
        provider = self.providers.get(claim.provider)
        if provider is None:
            return Failed("service_error", f"no provider named {claim.provider!r} is configured")
        if time.time() >= claim.deadline:
            return Failed("generation_timeout", f"The task did not finish within {self.settings.task_deadline:g} s.")
        job = Job(claim.id, claim.account_id, claim.model, claim.params, claim.state, claim.attempts)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(claim.deadline - time.time()):
                outcome = await provider.run(job, _Context(self, claim.id))
        except TimeoutError:
            return Failed("generation_timeout", f"The task did not finish within {self.settings.task_deadline:g} s.")
        except TaskFailure as exc:
            return Failed(exc.code, exc.message)
        except StorageUnavailable as exc:
            # The bucket (or its network) is down: worth retrying, and after the last try the contract's code for
            # an unavailable service, with the refund every failure gets. Nothing half-written is visible.
            log.error("object storage unavailable while running task", extra={"task_id": claim.id,
                                                                               "error": str(exc)})  # fmt: skip
            return self._retry_or_fail(claim, "service_unavailable", STORAGE_DOWN)
        except OSError as exc:
            log.error("storage or network error while running task", extra={"task_id": claim.id, "error": str(exc)})
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                # A full or read-only disk will not heal within this task's retries: fail now and refund.
                return Failed("service_error", "The media could not be stored (storage full); try again later.")
            return self._retry_or_fail(claim, "service_error", "The media could not be stored; try again later.")
        except (StoreUnavailable, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("provider raised; will retry", extra={"task_id": claim.id})
            return self._retry_or_fail(claim, "unknown_error", "The task failed unexpectedly.")
        finally:
            self._on_event("provider_call", {"provider": claim.provider, "seconds": time.perf_counter() - started})
        return outcome

    def _retry_or_fail(self, claim: Claim, code: str, message: str) -> Outcome:
        # Errors are counted in the task's state, apart from claims: a task polled a hundred times has not
        # failed a hundred times.
        errors = int(claim.state.get(ERRORS_KEY, 0)) + 1
        if errors >= MAX_ATTEMPTS:
            return Failed(code, message)
        return Pending(delay=min(2.0**errors, 30.0), state={**claim.state, ERRORS_KEY: errors})

    async def _apply(self, claim: Claim, outcome: Outcome) -> None:
        if isinstance(outcome, Pending):
            await self.service.store.tasks.reschedule(claim.id, self.name, time.time() + outcome.delay, outcome.state)
            return
        if isinstance(outcome, Completed):
            outcome = self._checked(claim, outcome)
        finish = Finish(task_id=claim.id, status=COMPLETED if isinstance(outcome, Completed) else FAILED,
                        now=time.time(), guard="owner", owner=self.name, webhook_id=new_webhook_id())  # fmt: skip
        if isinstance(outcome, Completed):
            finish = replace(finish, result=outcome.result, element=_element_row(claim, outcome),
                             billed_seconds=outcome.billed_seconds)  # fmt: skip
        else:
            finish = replace(finish, error_code=outcome.code, error_message=outcome.message)
            self._on_event("provider_error", {"provider": claim.provider, "code": outcome.code})
        done = await self.service.finish(finish)
        if done is None:
            log.info("task was finished elsewhere (cancelled or taken over)", extra={"task_id": claim.id})

    def _checked(self, claim: Claim, outcome: Completed) -> Completed | Failed:
        """A model whose tasks register an element cannot complete without one (its result would name nothing)."""
        spec = self.service.catalog.get(claim.model)
        if outcome.element is None and spec is not None and spec.registers_element:
            log.error("provider completed without an element", extra={"task_id": claim.id, "provider": claim.provider})
            return Failed("generation_failed_no_content", "The provider reported success but returned no element.")
        return outcome


def _element_row(claim: Claim, outcome: Completed) -> dict[str, Any] | None:
    """The element a completed task registers, if its provider named one."""
    if outcome.element is None:
        return None
    return {"element_id": outcome.element.element_id, "provider": claim.provider,
            "upstream_id": outcome.element.upstream_id}  # fmt: skip
