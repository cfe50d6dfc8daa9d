"""Worker processes started and watched by ``serve`` and ``worker``: the prefork model of Celery and Dramatiq.

One Python process runs one core's worth of work: its event loop does the database writes, the fetches and the
callbacks of every task it holds, and the GIL serializes its CPU work. Making elements is CPU work (decoding, hashing,
comparing, storing), so ``serve`` runs tasks in worker processes of their own, one per CPU by default, and the API
process only answers requests. Each worker process is a whole worker (claims with a lease, runs, commits its own
outcome, delivers callbacks), so the durability and exactly-once rules are the ones a lone ``reelgate worker`` has:
a process that dies loses only its leases, which another process takes over when they expire.

The supervisor restarts a process that died of anything but a request to stop (a crash, the OOM killer), waiting
longer after each quick failure so a process that cannot start does not spin. Stopping sends SIGTERM (each process
stops claiming and leaves its running tasks to their leases), then SIGKILL after a grace period. A process whose
supervisor vanished (SIGKILL) stops by itself: it asks the kernel for SIGTERM when its parent dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("reelgate.supervisor")
PARENT_ENV = "REELGATE_SUPERVISOR_PID"
CHILD_MODULE = "reelgate.cli.background"
WATCH_SECONDS = 0.5
QUICK_FAILURE_SECONDS = 10.0  # a process that dies sooner than this after its start counts as failing to start
MAX_BACKOFF = 30.0
_PR_SET_PDEATHSIG = 1


def stop_with_parent() -> None:
    """In a child: get SIGTERM when the supervisor dies, and stop now if it died before this process could ask."""
    expected = os.environ.get(PARENT_ENV)
    if not expected:
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(expected):
        os.kill(os.getpid(), signal.SIGTERM)


def stopped_on_request(code: int) -> bool:
    """A worker process that was asked to stop (SIGINT, SIGTERM, or Ctrl-C to the whole group) exits 0."""
    return code == 0


@dataclass
class _Slot:
    index: int
    popen: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0  # quick failures in a row
    not_before: float = 0.0  # no restart before this time (backoff)


@dataclass
class WorkerProcesses:
    """``count`` worker processes running ``python -m reelgate.cli.background`` with ``env``."""

    count: int
    env: dict[str, str]
    on_exit: Callable[[int], None] = lambda pid: None  # e.g. prometheus_client's mark_process_dead
    slots: list[_Slot] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _watcher: threading.Thread | None = None

    def start(self) -> None:
        self.env = {**self.env, PARENT_ENV: str(os.getpid())}
        self.slots = [_Slot(i) for i in range(self.count)]
        for slot in self.slots:
            self._spawn(slot)
        self._watcher = threading.Thread(target=self._watch, name="reelgate-supervisor", daemon=True)
        self._watcher.start()
        log.info("worker processes started", extra={"processes": self.count, "pids": self.pids()})

    def pids(self) -> list[int]:
        with self._lock:
            return [s.popen.pid for s in self.slots if s.popen is not None and s.popen.poll() is None]

    def _spawn(self, slot: _Slot) -> None:
        command = [sys.executable, "-m", CHILD_MODULE]
        slot.popen = subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL)
        slot.started = time.monotonic()

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_SECONDS):
            with self._lock:
                for slot in self.slots:
                    if not self._stopping.is_set():
                        self._check(slot)

    def _check(self, slot: _Slot) -> None:
        now = time.monotonic()
        if slot.popen is None:
            if now >= slot.not_before:
                self._spawn(slot)
            return
        code = slot.popen.poll()
        if code is None:
            return
        pid, slot.popen = slot.popen.pid, None
        self.on_exit(pid)
        if stopped_on_request(code):
            log.info("worker process stopped", extra={"pid": pid})
            return  # told to stop (a signal to the whole group): not restarted
        slot.failures = slot.failures + 1 if now - slot.started < QUICK_FAILURE_SECONDS else 0
        delay = 0.0 if not slot.failures else min(MAX_BACKOFF, 2.0 ** (slot.failures - 1))
        slot.not_before = now + delay
        log.error("worker process died; restarting it", extra={"pid": pid, "exit_code": code, "after_s": delay})

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every process, wait up to ``grace`` seconds for them to stop, SIGKILL the rest."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
        running = [s.popen for s in self.slots if s.popen is not None]
        for popen in running:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for popen in running:
            try:
                popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker process did not stop in time; killing it", extra={"pid": popen.pid})
                popen.kill()
                popen.wait()
            self.on_exit(popen.pid)
