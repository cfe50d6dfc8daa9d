"""A callback receiver on 127.0.0.1 (HTTP or HTTPS) that records each delivery and answers from a script."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import orjson

# Hostile answers a script may name besides a status or a stall.
ENDLESS = "endless"  # 200 OK, then a chunked body that never ends (until the client hangs up)
TRICKLE_HEAD = "trickle-head"  # the status line and headers one byte every 0.1 s, so the head never completes in time
TRICKLE_BODY = "trickle-body"  # 200 OK at once, then a body of one byte every 0.1 s, for ever
Answer = int | float | str
_CHUNK = b"x" * 65536


@dataclass(frozen=True)
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # an attacker's hundreds of parallel deliveries all connect at once

    def __init__(self, owner: Receiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - http.server's dispatch name
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        owner = self.server.owner
        answer = owner.record(Received(time.time(), self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        with contextlib.suppress(OSError):  # the client hung up first (its deadline passed): nothing to answer
            self._answer(answer)

    def _answer(self, answer: Answer) -> None:
        owner = self.server.owner
        if isinstance(answer, str):
            self._hostile(answer)
            return
        if isinstance(answer, float):
            owner.stop.wait(answer)
            answer = 200
        self.send_response(answer)
        if 300 <= answer < 400:
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def _hostile(self, kind: str) -> None:
        self.close_connection = True
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        sent = 0
        try:
            if kind == TRICKLE_HEAD:
                for byte in head:
                    if self.server.owner.stop.wait(0.1):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                return
            self.wfile.write(head)
            while not self.server.owner.stop.is_set():
                if kind == ENDLESS:
                    self.wfile.write(b"10000\r\n" + _CHUNK + b"\r\n")
                    sent += len(_CHUNK)
                else:
                    self.wfile.write(b"1\r\nx\r\n")
                    self.wfile.flush()
                    sent += 1
                    self.server.owner.stop.wait(0.1)
        finally:
            self.server.owner.streamed.append(sent)

    def log_message(self, format: str, *args: object) -> None:
        return None


class Receiver:
    """``script`` lists answers for successive requests: an HTTP status, a float = seconds to stall first, or one of
    ENDLESS, TRICKLE_HEAD, TRICKLE_BODY; ``default`` answers every request after the script."""

    def __init__(self, script: list[Answer] | None = None, ssl_context: ssl.SSLContext | None = None, *,
                 default: Answer = 200) -> None:  # fmt: skip
        self.script = list(script or [])
        self.default = default
        self.received: list[Received] = []
        self.streamed: list[int] = []  # body bytes sent by each ENDLESS or TRICKLE_BODY answer before the hang-up
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(self)
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if ssl_context else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def record(self, item: Received) -> Answer:
        with self._lock:
            self.received.append(item)
            return self.script.pop(0) if self.script else self.default

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self._server.server_address[1]}{path}"

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        """Wait for ``count`` requests, repeats included (a delivery may be sent again after a crash)."""
        return self._wait(lambda got: len(got) >= count, f"{count} callbacks", timeout)

    def wait_for_tasks(self, task_ids: Iterable[str], timeout: float = 20) -> list[Received]:
        """Wait until every task in ``task_ids`` has been called back at least once."""
        wanted = set(task_ids)

        def covered(got: list[Received]) -> bool:
            return wanted <= {orjson.loads(r.body).get("id") for r in got}

        return self._wait(covered, f"callbacks for {len(wanted)} tasks", timeout)

    def _wait(self, done: Callable[[list[Received]], bool], what: str, timeout: float) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = list(self.received)
            if done(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {what}, got {len(self.received)} requests")

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()
