"""Connections that send nothing, against the real protocol: closed 10 s after accept, never holding a request
slot, capped per client (IPv4 address, IPv6 /64) and in total (the oldest idle one is closed first), so silent
connections from many source addresses cannot make the server refuse anyone else."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rawhttp import Served, exchange, get, read_outcome, serve_app
from reelgate.api import server

SOURCES = [f"127.0.0.{n}" for n in range(2, 19)]  # 17 loopback addresses, each a distinct client


@pytest.fixture
async def served(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Served]:
    async with serve_app(tmp_path, sqlite_template) as opened:
        yield opened


async def _silent(port: int, source: str = "127.0.0.1", host: str = "127.0.0.1") -> tuple[asyncio.StreamReader,
                                                                                           asyncio.StreamWriter]:  # fmt: skip
    return await asyncio.open_connection(host, port, local_addr=(source, 0))


async def _closed(reader: asyncio.StreamReader, wait: float) -> bool:
    """True when the server closed the connection within ``wait`` s; False when it still holds it open."""
    return (await read_outcome(reader, wait)).closed


async def test_silent_connections_from_17_addresses_do_not_take_the_server(
    tmp_path: Path, sqlite_template: Path
) -> None:
    # The production limits (cli.serve: limit_concurrency=4096; 256 per client): 17 x 256 = 4352 silent sockets
    # filled uvicorn's count of connections and /healthz from a bystander answered 503.
    async with serve_app(tmp_path, sqlite_template, limit_concurrency=4096, backlog=4096) as served:
        flood = []
        for source in SOURCES:
            flood += await asyncio.gather(
                *(_silent(served.port, source) for _ in range(server.MAX_CONNECTIONS_PER_CLIENT))
            )
        try:
            await asyncio.sleep(0.3)
            out = await exchange(served.port, get(), source="127.0.0.100")
            assert out.status == 200, out.raw[:200]
            # The oldest idle ones were closed to stay within the cap; the newest are still open.
            assert len(served.connections()) <= server.MAX_IDLE_CONNECTIONS
            assert await _closed(flood[0][0], 1) and not await _closed(flood[-1][0], 0.05)
        finally:
            for _, writer in flood:
                writer.close()


async def test_the_silent_connections_of_a_full_server_do_not_hold_request_slots(
    tmp_path: Path, sqlite_template: Path
) -> None:
    async with serve_app(tmp_path, sqlite_template, limit_concurrency=8) as served:
        flood = [await _silent(served.port, SOURCES[i % 17]) for i in range(40)]
        try:
            await asyncio.sleep(0.1)
            answers = await asyncio.gather(*(exchange(served.port, get(), source=s) for s in SOURCES[:4]))
            assert [a.status for a in answers] == [200] * 4
        finally:
            for _, writer in flood:
                writer.close()


async def test_the_default_head_deadline_is_10_s_from_accept(served: Served) -> None:
    assert server.HEAD_TIMEOUT == 10.0
    loop = asyncio.get_running_loop()
    before = loop.time()
    reader, writer = await _silent(served.port)
    after = loop.time()
    try:
        await asyncio.sleep(0.1)
        (conn,) = served.connections()
        timer = conn._head_timer  # armed at accept, before any byte
        assert timer is not None and before + 10.0 <= timer.when() <= after + 10.0 + 0.05
        assert not await _closed(reader, 0.3)  # and not closed early
    finally:
        writer.close()


async def test_a_connection_that_never_sends_a_byte_is_closed(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "HEAD_TIMEOUT", 0.5)
    started = time.monotonic()
    reader, writer = await _silent(served.port)
    try:
        out = await read_outcome(reader, 5)
    finally:
        writer.close()
    assert out.closed and out.raw == b""
    assert 0.4 < time.monotonic() - started < 2


async def test_the_head_deadline_counts_from_accept_not_from_the_first_byte(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "HEAD_TIMEOUT", 1.0)
    started = time.monotonic()
    reader, writer = await _silent(served.port)
    try:
        await asyncio.sleep(0.6)
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        out = await read_outcome(reader, 5)
    finally:
        writer.close()
    assert out.closed and out.raw == b""
    assert time.monotonic() - started < 1.5  # 1 s after accept; from the first byte it would be 1.6 s


async def test_beyond_the_idle_cap_the_oldest_idle_connection_is_closed(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "MAX_IDLE_CONNECTIONS", 4)
    conns = []
    for _ in range(4):
        conns.append(await _silent(served.port))
        await asyncio.sleep(0.05)  # accepted in this order
    try:
        assert not await _closed(conns[0][0], 0.2)
        conns.append(await _silent(served.port))
        assert await _closed(conns[0][0], 2)
        assert [await _closed(r, 0.05) for r, _ in conns[1:]] == [False] * 4
        conns[-1][1].write(get())  # the newest still answers
        assert (await read_outcome(conns[-1][0], 3)).status == 200
    finally:
        for _, writer in conns:
            writer.close()


async def test_a_connection_with_a_request_in_flight_is_never_evicted(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "MAX_IDLE_CONNECTIONS", 2)
    body = b'{"model": "no-such-model", "model_params": {}}'
    busy_reader, busy = await _silent(served.port)
    busy.write(b"POST /v1/videos/generations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
    await asyncio.sleep(0.1)  # its head is in: a request in flight, waiting for its body
    silent = [await _silent(served.port) for _ in range(4)]
    try:
        assert await _closed(silent[0][0], 1)  # the idle ones make room among themselves
        busy.write(body + b"")
        out = await read_outcome(busy_reader, 3, answers=1)
        assert out.status == 401 and not out.closed  # answered (no key) on the connection that was never cut
    finally:
        busy.close()
        for _, writer in silent:
            writer.close()


async def test_an_answered_keep_alive_connection_counts_as_idle_again(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "MAX_IDLE_CONNECTIONS", 2)
    reader, writer = await _silent(served.port)
    writer.write(get(close=False))
    assert (await read_outcome(reader, 3, answers=1)).status == 200
    others = [await _silent(served.port) for _ in range(2)]
    try:
        assert await _closed(reader, 1)  # idle since its answer, and the oldest idle
        assert [await _closed(r, 0.05) for r, _ in others] == [False, False]
    finally:
        writer.close()
        for _, w in others:
            w.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_clients_are_capped_too(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "MAX_CONNECTIONS_PER_CLIENT", 3)
    async with serve_app(tmp_path, sqlite_template, host="::1") as served:
        held = [await _silent(served.port, "::1", "::1") for _ in range(3)]
        try:
            extra = await exchange(served.port, get(), host="::1", wait=2)
            assert extra.closed and extra.raw == b""
        finally:
            for _, writer in held:
                writer.close()
