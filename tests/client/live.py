"""A real ``reelgate serve`` on loopback for client and CLI tests, plus loopback helpers that misbehave on cue."""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

REELGATE = str(Path(sys.executable).with_name("reelgate"))
if not Path(REELGATE).exists():  # pragma: no cover - an installed console script elsewhere on PATH
    REELGATE = shutil.which("reelgate") or REELGATE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A ``reelgate serve`` subprocess, the environment its CLI commands share, and API keys by account name."""

    base_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    keys: dict[str, str]

    def cli(
        self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "COLUMNS": "300", **(extra_env or {})}  # wide enough that no table cell is cut
        return subprocess.run([REELGATE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def ledger(self, account: str, task_id: str) -> list[tuple[str, float]]:
        """The ledger entries of one task as ``(kind, credits)``, newest first, read with ``reelgate credits show``."""
        done = self.cli("credits", "show", "--account", account, "--entries", "1000")
        assert done.returncode == 0, done.stderr
        rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in done.stdout.splitlines()]
        return [(row[2], float(row[3])) for row in rows if len(row) == 6 and row[4] == task_id]

    def balance(self, account: str) -> dict[str, float]:
        """Available, reserved and captured credits of ``account``, read with ``reelgate credits show``."""
        done = self.cli("credits", "show", "--account", account, "--entries", "50")
        assert done.returncode == 0, done.stderr
        found = re.search(r"available\s+([\d.]+),\s+reserved\s+([\d.]+),\s+captured\s+([\d.]+)", done.stdout)
        assert found, done.stdout
        return dict(zip(("available", "reserved", "captured"), map(float, found.groups()), strict=True))


def create_keys(env: dict[str, str], accounts: dict[str, int]) -> dict[str, str]:
    """API keys for new accounts (name -> credits, 0 for none), made with ``reelgate keys create``.

    The commands run a few at a time: each is mostly interpreter start-up, so one per CPU is the fastest.
    """
    names, keys = list(accounts), {}
    batch = max(2, os.cpu_count() or 2)
    for start in range(0, len(names), batch):
        running = {name: _keys_create(env, name, accounts[name]) for name in names[start : start + batch]}
        for name, process in running.items():
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            keys[name] = out.strip().splitlines()[-1]
    return keys


def _keys_create(env: dict[str, str], account: str, credits: int) -> subprocess.Popen[str]:
    args = [REELGATE, "keys", "create", "--account", account] + (["--credits", str(credits)] if credits else [])
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextmanager
def live_server(
    data_dir: Path, accounts: dict[str, int], extra_env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """``reelgate serve`` on a free loopback port with a fresh data dir, and keys for ``accounts`` (at least one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    env.update(
        REELGATE_DATA_DIR=str(data_dir),
        REELGATE_ALLOW_PRIVATE_NETWORKS="1",
        REELGATE_LOG_LEVEL="WARNING",
        REELGATE_RATE_LIMIT_PER_MINUTE="100000",
        **(extra_env or {}),
    )
    first, *others = accounts
    # The first key alone: it migrates the database and writes the sealing key before anything else starts.
    keys = create_keys(env, {first: accounts[first]})
    port, log = free_port(), data_dir / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([REELGATE, "serve", "--port", str(port)], env=env, stdout=sink, stderr=sink)
    server = LiveServer(f"http://127.0.0.1:{port}", env, process, log, keys)
    try:
        keys.update(create_keys(env, {name: accounts[name] for name in others}))  # while the server starts
        _wait_healthy(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Accounts a test counts credits or lists tasks in get their own; all are made once per session.
ACCOUNTS = {"shared": 1000, "broke": 0, "pages": 10, "idem": 5, "async-main": 10, "async-lost": 5, "cli": 50}
_SESSION = pytest.StashKey[LiveServer]()


def session_server(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    """One server with every account in ACCOUNTS for the whole test session, shared by tests/client and tests/cli."""
    if _SESSION not in config.stash:
        stack = ExitStack()
        config.add_cleanup(stack.close)
        config.stash[_SESSION] = stack.enter_context(live_server(tmp_path_factory.mktemp("reelgate-server"), ACCOUNTS))
    return config.stash[_SESSION]


# Accounts of the server with an upstream Kling channel (the fake Kling server), for the video models.
KLING_ACCOUNTS = {"video": 1000, "video-async": 1000, "video-cli": 1000}
_KLING_SESSION = pytest.StashKey[LiveServer]()


def kling_session_server(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    """A second server for the whole session whose Kling channel is the fake Kling server (started here), and which
    makes elements upstream on it, as video models need: the full element-then-video flow, offline."""
    if _KLING_SESSION not in config.stash:
        from fakes.kling_server import FakeKling
        from kling.harness import AK, SK, channel, write_config

        stack = ExitStack()
        config.add_cleanup(stack.close)
        fake = stack.enter_context(FakeKling(access_keys={AK: SK}))
        folder = tmp_path_factory.mktemp("reelgate-kling-server")
        channels = write_config(folder / "kling.json", [channel("fake", fake)])
        env = {"REELGATE_KLING_CONFIG": channels, "REELGATE_PROVIDERS": "kling-custom-element=kling"}
        config.stash[_KLING_SESSION] = stack.enter_context(live_server(folder, KLING_ACCOUNTS, env))
    return config.stash[_KLING_SESSION]


def _wait_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"reelgate serve exited: {server.log.read_text()[-2000:]}")
        try:
            if httpx.get(server.base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("reelgate serve did not become healthy within 30 s")


# --- pictures ------------------------------------------------------------------------------------------------------


def picture(scene: int, width: int = 640, height: int = 800) -> Image.Image:
    """A photo-like picture; each ``scene`` has its own backdrop and shapes, so two scenes are never near-duplicates."""
    rng = random.Random(scene)
    top = tuple(rng.randrange(256) for _ in range(3))
    bottom = tuple(rng.randrange(256) for _ in range(3))
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    for _ in range(8):
        x0, y0 = rng.uniform(-0.1, 0.8) * width, rng.uniform(-0.1, 0.8) * height
        box = (x0, y0, x0 + rng.uniform(0.15, 0.6) * width, y0 + rng.uniform(0.15, 0.6) * height)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return image


def jpeg(scene: int, width: int = 640, height: int = 800) -> bytes:
    buffer = io.BytesIO()
    picture(scene, width, height).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def png(scene: int, width: int = 640, height: int = 800) -> bytes:
    buffer = io.BytesIO()
    picture(scene, width, height).save(buffer, "PNG")
    return buffer.getvalue()


# --- loopback helpers ----------------------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FlakyProxy:
    """An HTTP proxy in front of the real server; each request takes the next action from ``plan``:

    ``pass`` forwards; ``drop`` forwards, then hangs up without answering (the answer is lost on the way back);
    ``503``/``429`` answer that error without forwarding (``retry_after`` seconds in Retry-After);
    ``stall`` holds the request ``stall_seconds`` and hangs up. An empty plan means ``pass``.
    """

    upstream: str
    plan: list[str] = field(default_factory=list)
    retry_after: str = "0"
    stall_seconds: float = 2.0
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self, seen: Seen) -> str:
        with self.lock:
            self.seen.append(seen)
            return self.plan.pop(0) if self.plan else "pass"


def _proxy_handler(proxy: FlakyProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, kind: str) -> None:
            body = json.dumps({"error": {"code": kind, "message": f"simulated {status}", "type": f"{kind}_error"}})
            self._reply(status, body.encode(), {"Content-Type": "application/json", "Retry-After": proxy.retry_after})

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            action = proxy.next_action(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            if action in ("503", "429"):
                self._error(int(action), "service_unavailable" if action == "503" else "rate_limit")
                return
            if action == "stall":
                time.sleep(proxy.stall_seconds)
                self.close_connection = True
                return
            answer = self._forward(body)
            if action == "drop":
                self.close_connection = True
                return
            self._reply(answer.status_code, answer.content, {"Content-Type": answer.headers.get("content-type", "")})

        def _forward(self, body: bytes) -> httpx.Response:
            wanted = ("authorization", "idempotency-key", "content-type")
            headers = {k: v for k, v in self.headers.items() if k.lower() in wanted}
            return httpx.request(self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=30)

        do_GET = do_POST = do_DELETE = _handle

    return Handler


@contextmanager
def flaky_proxy(upstream: str) -> Iterator[tuple[FlakyProxy, str]]:
    """The proxy and its base URL."""
    proxy = FlakyProxy(upstream)
    with _serve(_proxy_handler(proxy)) as url:
        yield proxy, url


@dataclass
class SlowImages:
    """Serves a JPEG, but only once ``release`` is set: a task fetching it stays processing until then."""

    image: bytes
    release: threading.Event = field(default_factory=threading.Event)


def _slow_handler(slow: SlowImages) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            slow.release.wait(timeout=30)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(slow.image)))
            self.end_headers()
            self.wfile.write(slow.image)

    return Handler


@contextmanager
def slow_images(image: bytes) -> Iterator[tuple[SlowImages, str]]:
    """The slow image server and the URL of its (only) picture."""
    slow = SlowImages(image)
    with _serve(_slow_handler(slow)) as url:
        try:
            yield slow, url + "/slow.jpg"
        finally:
            slow.release.set()  # before shutting down, so no handler is left waiting


@dataclass
class FileHost:
    """Serves ``files`` (path -> bytes) over HTTP, as a storage bucket serves results, and misbehaves on cue:
    each of the next ``cut`` answers stops after ``cut_after`` bytes of the body and hangs up; a path in
    ``redirects`` answers 302 to its target. ``/stream/<n>``
    answers ``n`` generated bytes in 64 KiB writes (a big body no test needs to hold)."""

    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    cut: int = 0
    cut_after: int = 0
    served: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_cut(self, path: str) -> bool:
        with self.lock:
            self.served.append(path)
            if self.cut > 0:
                self.cut -= 1
                return True
            return False


STREAM_BLOCK = bytes(range(256)) * 256  # 64 KiB


class _FileHandler(BaseHTTPRequestHandler):
    host: FileHost  # set on a subclass per server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path in self.host.redirects:
            self._redirect(self.host.redirects[self.path])
            return
        cut = self.host.take_cut(self.path)
        if self.path.startswith("/stream/"):
            self._stream(int(self.path.rsplit("/", 1)[1]), cut)
            return
        body = self.host.files.get(self.path)
        if body is None:
            self._head(404, 9, "text/plain")
            self.wfile.write(b"not found")
            return
        self._head(200, len(body), "video/mp4")
        self.wfile.write(body[: self.host.cut_after] if cut else body)
        if cut:
            self.close_connection = True

    def _redirect(self, target: str) -> None:
        self.send_response(302)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _head(self, status: int, length: int, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _stream(self, size: int, cut: bool) -> None:
        self._head(200, size, "application/octet-stream")
        sent = 0
        while sent < size and not (cut and sent >= self.host.cut_after):
            block = STREAM_BLOCK[: size - sent]
            self.wfile.write(block)
            sent += len(block)
        if cut:
            self.close_connection = True


@contextmanager
def file_host(files: dict[str, bytes]) -> Iterator[tuple[FileHost, str]]:
    """The file host and its base URL."""
    host = FileHost(files)
    with _serve(type("FileHandler", (_FileHandler,), {"host": host})) as url:
        yield host, url


@contextmanager
def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
