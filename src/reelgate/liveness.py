"""A running worker's or dispatcher's heartbeat: its row in ``process_heartbeats`` kept fresh, removed on a clean exit.

Operators read these rows to tell who is alive (``reelgate status``, ``reelgate_workers_alive``, the console). A
beat that cannot reach the database is skipped, not retried: the next one comes a period later, and a process
whose beats fail for longer than the liveness threshold rightly reads as not alive (it cannot claim work either).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable

from reelgate.errors import StoreUnavailable
from reelgate.store.processes import ProcessBeat, ProcessStore

log = logging.getLogger("reelgate.liveness")
PRUNE_AFTER = 3600.0  # seconds a silent process's row stays on record (for "stopped 20 min ago") before it goes


class Heartbeat:
    """Beats for one process every ``every`` seconds from ``run`` until ``stop`` is set, then forgets the row."""

    def __init__(
        self,
        store: ProcessStore,
        *,
        process_id: str,
        kind: str,
        concurrency: int,
        in_hand: Callable[[], int],
        every: float,
    ) -> None:
        self.store = store
        self.process_id = process_id
        self.kind = kind
        self.concurrency = concurrency
        self.in_hand = in_hand
        self.every = every
        self.started = time.time()
        self._host = socket.gethostname()
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self, stop: asyncio.Event) -> None:
        """Beat in the background (the first beat at once) until ``stop`` is set."""
        self._stop = stop
        self._task = asyncio.create_task(self.run(stop))

    async def finish(self) -> None:
        """Wait for the row to be forgotten after ``stop`` was set; when the process's run ended otherwise (an
        error, a cancel), stop beating now (the row is forgotten then too)."""
        if self._task is None:
            return
        if not self._stop.is_set():
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self.beat()
                except Exception:  # a bug here must not end the beats: the process would read as dead while working
                    log.exception("heartbeat failed", extra={"process": self.process_id})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.every)
        finally:
            # A clean stop says so at once; a stop cut short (cancelled, database gone) leaves the row to go silent.
            with contextlib.suppress(StoreUnavailable):
                await self.store.forget(self.process_id)

    async def beat(self) -> None:
        """Write one beat now (and prune rows silent for longer than PRUNE_AFTER)."""
        now = time.time()
        row = ProcessBeat(id=self.process_id, kind=self.kind, host=self._host, pid=os.getpid(), started=self.started,
                          last_seen=now, concurrency=self.concurrency, in_hand=self.in_hand())  # fmt: skip
        try:
            await self.store.beat(row, prune_before=now - PRUNE_AFTER)
        except StoreUnavailable as exc:
            if not self._failing:  # once per outage, not once per beat
                log.warning("heartbeat not recorded: database unavailable", extra={"process": self.process_id,
                                                                                  "error": str(exc)})  # fmt: skip
            self._failing = True
            return
        self._failing = False
