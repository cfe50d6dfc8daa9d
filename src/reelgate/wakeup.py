"""Wake-ups between the processes of one machine: the API tells worker processes "a task is due" at once.

A worker polls the database every ``REELGATE_WORKER_POLL_INTERVAL`` (0.5 s); inside one process a submit wakes the
worker directly. Once tasks run in worker processes of their own (``serve`` starts one per CPU), that direct wake
would be lost and every element would wait up to half a second before a worker even looks. Here each worker process
binds a Unix datagram socket in a directory shared by ``serve`` and its children (``REELGATE_WAKE_DIR``), and the
API sends one byte to every socket there: ``t`` (a task is due) or ``d`` (a callback is due).

A wake-up is only a hint. A lost one (a full socket buffer, a process starting) costs at most one poll interval,
because the database is still polled; nothing here is needed for correctness. Datagrams never block the sender:
a socket whose buffer is full is already going to wake its reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("reelgate.wakeup")
ENV = "REELGATE_WAKE_DIR"
TASK_DUE = b"t"
CALLBACK_DUE = b"d"
SUFFIX = ".sock"
MAX_ROOT = 60  # + "/reelgate-wake-xxxxxxxx/" (24) + "<pid>-<8 hex>.sock" (up to 21) stays under 108 bytes
RESCAN_SECONDS = 1.0  # how long a sender trusts its list of listeners (a new worker process is found this late)


def wake_root() -> str:
    """Where to make a wake directory: the temporary directory, unless its path is so long that a socket's path in
    it would pass the 107 bytes Linux allows (pytest's and some containers' TMPDIR do), then /tmp."""
    root = tempfile.gettempdir()
    return root if len(root) <= MAX_ROOT else "/tmp"


def wake_dir_from_env() -> Path | None:
    raw = os.environ.get(ENV, "")
    return Path(raw) if raw else None


class WakeSender:
    """Sends a wake-up byte to every listener in ``directory``; never blocks, never raises."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sock: socket.socket | None = None
        self._targets: list[str] = []
        self._scanned = 0.0

    def notify(self, topic: bytes) -> None:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        for target in self._listeners():
            try:
                self._sock.sendto(topic, target)
            except BlockingIOError:
                pass  # its buffer is full of wake-ups already: the reader will wake
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    self._forget(target, stale=exc.errno == errno.ECONNREFUSED)

    def _listeners(self) -> list[str]:
        now = time.monotonic()
        if now - self._scanned >= RESCAN_SECONDS:
            self._scanned = now
            try:
                self._targets = [str(p) for p in self.directory.glob(f"*{SUFFIX}")]
            except OSError:
                self._targets = []
        return self._targets

    def _forget(self, target: str, *, stale: bool) -> None:
        # Nobody reads a socket file that refuses: its process was killed before it could remove it.
        with contextlib.suppress(ValueError):
            self._targets.remove(target)
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(target)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class WakeListener:
    """This process's socket in the wake directory; each byte received calls the handler for its topic."""

    def __init__(self, directory: Path, handlers: dict[bytes, Callable[[], None]]) -> None:
        self.directory = directory
        self.handlers = handlers
        self.path = directory / f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Bind and start reading on the running loop; a directory that cannot be used leaves polling alone."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            log.warning("cannot listen for wake-ups; polling only", extra={"path": str(self.path), "error": str(exc)})
            return
        self._sock, self._loop = sock, asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._sock is not None
        topics: set[bytes] = set()
        while True:  # drain everything queued: a burst of submits is one wake-up
            try:
                topics.add(self._sock.recv(16)[:1])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
        for topic in topics:
            handler = self.handlers.get(topic)
            if handler is not None:
                handler()

    def close(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        with contextlib.suppress(OSError):
            self.path.unlink()
