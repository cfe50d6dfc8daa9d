"""A callback receiver on 127.0.0.1 (HTTP or HTTPS) that records each delivery and answers from a script."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import orjson


@dataclass(frozen=True)
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

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
        if isinstance(answer, float):
            owner.stop.wait(answer)
            answer = 200
        self.send_response(answer)
        if 300 <= answer < 400:
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        return None


class Receiver:
    """``script`` lists answers for successive requests: an HTTP status, or a float = seconds to stall first."""

    def __init__(self, script: list[int | float] | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.script = list(script or [])
        self.received: list[Received] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(self)
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if ssl_context else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def record(self, item: Received) -> int | float:
        with self._lock:
            self.received.append(item)
            return self.script.pop(0) if self.script else 200

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
