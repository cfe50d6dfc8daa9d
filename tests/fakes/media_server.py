"""A real threaded HTTP(S) server on 127.0.0.1 with per-test routes: files, redirects, errors, stalls, trickles."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

Behaviour = Callable[["_Handler"], None]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _State:
    routes: dict[str, Behaviour] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stalled handlers end through the stop event, not a join

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so tests can see one connection carry two requests
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        state = self.server.state
        with state.lock:
            state.seen.append(Seen("GET", self.path, dict(self.headers.items())))
            behaviour = state.routes.get(self.path.split("?", 1)[0])
        if behaviour is None:
            self.send_bytes(404, b"not found", "text/plain")
        else:
            behaviour(self)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def wait(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; True when it is."""
        return self.server.state.stop.wait(seconds)


class MediaServer:
    """``with MediaServer() as server: server.serve("/a.jpg", data, "image/jpeg"); server.url("/a.jpg")``."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._state = _State()
        self._server = _Server(self._state)
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self.port = self._server.server_address[1]
        # A short poll interval keeps shutdown (and so every test's teardown) quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._state.stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    @property
    def seen(self) -> list[Seen]:
        with self._state.lock:
            return list(self._state.seen)

    def route(self, path: str, behaviour: Behaviour) -> None:
        with self._state.lock:
            self._state.routes[path] = behaviour

    def serve(self, path: str, body: bytes, content_type: str = "application/octet-stream", **headers: str) -> None:
        self.route(path, lambda h: h.send_bytes(200, body, content_type, headers))

    def status(self, path: str, status: int, body: bytes = b"error") -> None:
        self.route(path, lambda h: h.send_bytes(status, body, "text/plain"))

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.route(path, lambda h: h.send_bytes(status, b"", "text/plain", {"Location": location}))

    def stall(self, path: str) -> None:
        """Accept the request and never answer (until the server stops)."""
        self.route(path, _stall)

    def trickle(
        self, path: str, interval: float = 0.05, declared: int = 100_000, content_type: str = "image/jpeg"
    ) -> None:
        """Promise ``declared`` bytes, then send one byte every ``interval`` seconds (for up to 30 s)."""
        self.route(path, lambda h: _trickle(h, interval, declared, content_type))

    def lie_about_length(self, path: str, body: bytes, declared: int, content_type: str = "image/jpeg") -> None:
        """Declare ``declared`` bytes in Content-Length, send ``body``, then close the connection."""
        self.route(path, lambda h: _lie(h, body, declared, content_type))

    def endless(self, path: str, chunk: int = 65536, content_type: str = "image/jpeg") -> None:
        """Stream bytes with no Content-Length (close-delimited) until the client hangs up."""
        self.route(path, lambda h: _endless(h, chunk, content_type))


def _stall(h: _Handler) -> None:
    h.wait(30)


def _trickle(h: _Handler, interval: float, declared: int, content_type: str) -> None:
    h.send_response(200)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(declared))
    h.end_headers()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not h.wait(interval):
        try:
            h.wfile.write(b"x")
            h.wfile.flush()
        except OSError:
            return


def _lie(h: _Handler, body: bytes, declared: int, content_type: str) -> None:
    h.send_response(200)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(declared))
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(body)
    h.close_connection = True


def _endless(h: _Handler, chunk: int, content_type: str) -> None:
    h.send_response(200)
    h.send_header("Content-Type", content_type)
    h.send_header("Connection", "close")
    h.end_headers()
    h.close_connection = True
    block = b"\xff" * chunk
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not h.server.state.stop.is_set():
        try:
            h.wfile.write(block)
        except OSError:
            return
