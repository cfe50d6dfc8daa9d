"""Hostile HTTP clients against the real protocol: oversized heads, heads that never end, too many connections,
and bodies that trickle, each cut off without holding more than a socket."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from harness import make_settings
from procs import free_port
from reelgate.api import server
from reelgate.api.server import BoundedHttpToolsProtocol
from reelgate.auth import hash_key, key_prefix, new_api_key
from reelgate.callbacks import new_secret
from reelgate.runtime import Runtime, build_app


@pytest.fixture
async def served(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[tuple[int, Runtime]]:
    shutil.copy(sqlite_template, tmp_path / "db.sqlite")
    app, rt = build_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}"))
    chosen = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=chosen, http=BoundedHttpToolsProtocol, loop="asyncio",
                            log_config=None, access_log=False, lifespan="on")  # fmt: skip
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.01)
    yield chosen, rt
    srv.should_exit = True
    await task


@pytest.fixture
def port(served: tuple[int, Runtime]) -> int:
    return served[0]


async def _exchange(port: int, payload: bytes, read_timeout: float = 5) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), read_timeout)
    except (ConnectionError, OSError):
        return b""
    finally:
        writer.close()


async def test_normal_requests_still_work_with_keep_alive(port: int) -> None:
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = await _exchange(port, one * 3)
    assert answer.startswith(b"HTTP/1.1 200")


async def test_oversized_head_answers_431(port: int) -> None:
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
    answer = await _exchange(port, big)
    assert answer.startswith(b"HTTP/1.1 431") and b"headers_too_large" in answer


async def test_a_head_that_never_ends_is_cut(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "HEAD_TIMEOUT", 0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server, no answer
    assert time.monotonic() - started < 3
    writer.close()


async def test_connections_per_client_are_capped(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_CONNECTIONS_PER_CLIENT", 5)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    try:
        await asyncio.sleep(0.2)
        extra = await _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 2)
        assert extra == b""
    finally:
        for s in held:
            s.close()
    await asyncio.sleep(0.2)
    assert (await _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(b"HTTP/1.1 200")


async def _key(rt: Runtime) -> str:
    key = new_api_key()
    acct = await rt.store.accounts.ensure_account("acme", None, new_secret())
    await rt.store.accounts.add_key(acct, hash_key(key), key_prefix(key), "")
    return key


async def test_a_trickling_body_gets_408(served: tuple[int, Runtime], monkeypatch: pytest.MonkeyPatch) -> None:
    port, rt = served
    monkeypatch.setattr(server, "BODY_TIMEOUT", 0.5)
    head = f"POST /v1/videos/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {await _key(rt)}\r\n"
    started = time.monotonic()
    answer = await _exchange(port, head.encode() + b"Content-Length: 1000\r\n\r\n{")
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer and b"0.5 s" in answer
    assert time.monotonic() - started < 3  # cut at the deadline, not at the client's read timeout


async def test_a_body_sent_in_pieces_within_the_deadline_is_answered(
    served: tuple[int, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, rt = served
    monkeypatch.setattr(server, "BODY_TIMEOUT", 1.0)
    body = b'{"model": "no-such-model", "model_params": {}}'
    head = (f"POST /v1/videos/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {await _key(rt)}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body[:10])
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(body[10:])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400") and b"model_not_found" in answer


async def test_an_early_answer_is_kept_when_the_body_never_comes(
    served: tuple[int, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = served
    monkeypatch.setattr(server, "BODY_TIMEOUT", 0.5)
    answer = await _exchange(port, b"POST /v1/videos/generations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    # The route refused the missing key before reading the body; the deadline then only closes the connection.
    assert answer.startswith(b"HTTP/1.1 401") and b"408" not in answer
