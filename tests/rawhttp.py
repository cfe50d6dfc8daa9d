"""Raw HTTP/1.1 on loopback for protocol tests: a real uvicorn server running our protocol, and a client that tells
an answer, a connection the server closed, and a connection the server still holds open apart."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from harness import make_settings
from procs import free_port
from reelgate.api.server import BoundedHttpToolsProtocol
from reelgate.runtime import Runtime, build_app


@dataclass
class Served:
    port: int
    rt: Runtime
    server: uvicorn.Server

    def connections(self) -> list[Any]:
        """The server's open protocol objects (uvicorn's own registry), to look at their timers."""
        return list(self.server.server_state.connections)


@contextlib.asynccontextmanager
async def serve_app(
    tmp_path: Path, sqlite_template: Path, host: str = "127.0.0.1", **config: Any
) -> AsyncIterator[Served]:
    """The real app on SQLite behind uvicorn with ``BoundedHttpToolsProtocol``; ``config`` goes to uvicorn.Config."""
    shutil.copy(sqlite_template, tmp_path / "db.sqlite")
    app, rt = build_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}"), worker=False, dispatcher=False)
    settings = {"http": BoundedHttpToolsProtocol, "loop": "asyncio", "log_config": None, "access_log": False,
                "lifespan": "on", **config}  # fmt: skip
    srv = uvicorn.Server(uvicorn.Config(app, host=host, port=free_port(), **settings))
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.01)
    try:
        yield Served(srv.config.port, rt, srv)
    finally:
        srv.should_exit = True
        await task


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        """The contract's error object; fails the test when the body is not the contract's JSON error body."""
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        parsed: dict[str, Any] = orjson.loads(self.body)["error"]
        assert {"code", "message", "type"} <= parsed.keys(), parsed
        return parsed


@dataclass
class Outcome:
    """What came back: the raw bytes, the answers in them, and whether the server closed the connection (EOF or
    reset) before the client stopped waiting. ``closed=False`` means the server still held it open: never "empty"."""

    raw: bytes
    closed: bool
    answers: list[Answer] = field(default_factory=list)

    @property
    def status(self) -> int | None:
        return self.answers[0].status if self.answers else None


def parse_answers(data: bytes) -> list[Answer]:
    """Whole responses in ``data`` (every answer of ours has a Content-Length); a partial one is left out."""
    out: list[Answer] = []
    while (end := data.find(b"\r\n\r\n")) >= 0:
        lines = data[:end].decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        size = int(headers.get("content-length", "0"))
        if len(data) < end + 4 + size:
            break
        out.append(Answer(int(lines[0].split()[1]), headers, data[end + 4 : end + 4 + size]))
        data = data[end + 4 + size :]
    return out


async def read_outcome(reader: asyncio.StreamReader, wait: float, answers: int | None = None) -> Outcome:
    """Read until the server closes, ``answers`` whole answers are in, or ``wait`` seconds pass."""
    raw, closed = b"", False
    deadline = asyncio.get_running_loop().time() + wait
    while answers is None or len(parse_answers(raw)) < answers:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except TimeoutError:
            break  # still open: "hung", never mistaken for an empty answer
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        if not chunk:
            closed = True
            break
        raw += chunk
    return Outcome(raw, closed, parse_answers(raw))


async def exchange(port: int, payload: bytes, *, wait: float = 3.0, answers: int | None = None,
                   host: str = "127.0.0.1", source: str | None = None) -> Outcome:  # fmt: skip
    """Send ``payload`` on a new connection (from ``source`` when given) and read what comes back."""
    local = (source, 0) if source else None
    reader, writer = await asyncio.open_connection(host, port, local_addr=local)
    try:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            writer.write(payload)
            await writer.drain()
        return await read_outcome(reader, wait, answers)
    finally:
        writer.close()


def get(path: str = "/healthz", close: bool = True) -> bytes:
    """A GET request; ``close`` asks the server to close after answering (so reading to EOF ends at once)."""
    connection = b"Connection: close\r\n" if close else b""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + connection + b"\r\n"
