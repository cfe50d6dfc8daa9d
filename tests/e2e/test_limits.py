"""Hostile HTTP clients against the real protocol: oversized heads (counted to the byte), heads that never end,
too many connections, bodies that trickle, malformed requests and a full server, each cut off without holding
more than a socket, and every refusal the contract's JSON error body. A connection the server closed and one it
still holds open are told apart (rawhttp.Outcome.closed), so a server that hangs instead of closing fails."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rawhttp import Served, exchange, get, read_outcome, serve_app
from reelgate.api import server
from reelgate.auth import hash_key, key_prefix, new_api_key
from reelgate.callbacks import new_secret
from reelgate.runtime import Runtime

LIMIT = server.MAX_HEAD_BYTES


@pytest.fixture
async def served(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Served]:
    async with serve_app(tmp_path, sqlite_template) as opened:
        yield opened


@pytest.fixture
def port(served: Served) -> int:
    return served.port


def head_of(size: int, path: str = "/healthz") -> bytes:
    """A GET head of exactly ``size`` bytes, blank line included, padded with one header."""
    start, end = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"\r\n\r\n"
    head = start + b"a" * (size - len(start) - len(end)) + end
    assert len(head) == size
    return head


async def test_the_documented_head_limit_is_64_kib() -> None:
    assert server.MAX_HEAD_BYTES == 65536


async def test_normal_requests_still_work_with_keep_alive(port: int) -> None:
    out = await exchange(port, get(close=False) * 3, answers=3)
    assert [a.status for a in out.answers] == [200, 200, 200] and not out.closed


@pytest.mark.parametrize("size", [70_000, 200_000])
async def test_an_oversized_head_answers_431(port: int, size: int) -> None:
    out = await exchange(port, head_of(size))
    assert out.closed and out.status == 431
    assert out.answers[0].error()["code"] == "headers_too_large"


async def test_the_head_limit_is_counted_to_the_byte(port: int) -> None:
    assert (await exchange(port, head_of(LIMIT), answers=1)).status == 200
    refused = await exchange(port, head_of(LIMIT + 1))
    assert refused.status == 431 and refused.closed


@pytest.mark.parametrize(("size", "second"), [(LIMIT, 200), (LIMIT + 1, 431)])
async def test_a_pipelined_head_is_counted_from_its_own_first_byte(port: int, size: int, second: int) -> None:
    out = await exchange(port, get(close=False) + head_of(size), answers=2)
    assert [a.status for a in out.answers] == [200, second]


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(("size", "second"), [(LIMIT, 200), (LIMIT + 1, 431)])
async def test_a_head_behind_a_body_is_counted_exactly(port: int, chunked: bool, size: int, second: int) -> None:
    body = b'{"a": "\r\n\r\n"}'  # a blank line inside a body is not the end of anything
    framing = b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if chunked else (
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
    post = b"POST /v1/videos/generations HTTP/1.1\r\nHost: x\r\n" + framing
    out = await exchange(port, post + head_of(size), answers=2)
    assert [a.status for a in out.answers] == [401, second]


@pytest.mark.parametrize(("size", "status"), [(LIMIT, 200), (LIMIT + 1, 431)])
async def test_a_blank_line_split_across_two_reads_is_counted(port: int, size: int, status: int) -> None:
    head = head_of(size)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head[:-2])  # ends with the last header's CRLF; the blank line's CRLF comes in the next read
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.write(head[-2:])
        await writer.drain()
        out = await read_outcome(reader, 3, answers=1)
    finally:
        writer.close()
    assert out.status == status


async def test_a_malformed_request_gets_the_contract_error_body(port: int) -> None:
    out = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")
    assert out.closed and out.status == 400
    error = out.answers[0].error()
    assert error["code"] == "malformed_request" and error["type"] == "invalid_request_error"
    assert "header" in error["message"].lower()  # the parser's own reason, so a client can fix its request


async def test_a_head_that_never_ends_is_cut(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "HEAD_TIMEOUT", 0.5)
    started = time.monotonic()
    out = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", wait=5)
    assert out.closed and out.raw == b""  # closed by the server, no answer; not merely still waiting
    assert time.monotonic() - started < 3


async def test_connections_per_client_are_capped(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_CONNECTIONS_PER_CLIENT", 5)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    try:
        await asyncio.sleep(0.2)
        extra = await exchange(port, get(), wait=2)
        assert extra.closed and extra.raw == b""  # refused at once: neither answered nor left hanging
        other = await exchange(port, get(), source="127.0.0.2")  # another client is not affected
        assert other.status == 200
    finally:
        for s in held:
            s.close()
    await asyncio.sleep(0.2)
    assert (await exchange(port, get())).status == 200


async def _key(rt: Runtime) -> str:
    key = new_api_key()
    acct = await rt.store.accounts.ensure_account("acme", None, new_secret())
    await rt.store.accounts.add_key(acct, hash_key(key), key_prefix(key), "")
    return key


async def _held_body(port: int, key: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A submit whose body never finishes: the route waits for it, so the request stays in flight."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST /v1/videos/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                 "Content-Length: 1000\r\n\r\n{".encode())  # fmt: skip
    await writer.drain()
    return reader, writer


async def test_a_trickling_body_gets_408(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "BODY_TIMEOUT", 0.5)
    started = time.monotonic()
    reader, writer = await _held_body(served.port, await _key(served.rt))
    out = await read_outcome(reader, 5)
    writer.close()
    assert out.closed and out.status == 408
    assert out.answers[0].error()["code"] == "request_timeout" and b"0.5 s" in out.raw
    assert time.monotonic() - started < 3  # cut at the deadline, not at the client's read timeout


async def test_a_body_sent_in_pieces_within_the_deadline_is_answered(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "BODY_TIMEOUT", 1.0)
    body = b'{"model": "no-such-model", "model_params": {}}'
    head = (f"POST /v1/videos/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {await _key(served.rt)}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(head + body[:10])
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(body[10:])
        await writer.drain()
        out = await read_outcome(reader, 5)
    finally:
        writer.close()
    assert out.status == 400 and out.answers[0].error()["code"] == "model_not_found"


async def test_an_early_answer_is_kept_when_the_body_never_comes(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "BODY_TIMEOUT", 0.5)
    out = await exchange(port, b"POST /v1/videos/generations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    # The route refused the missing key before reading the body; the deadline then only closes the connection.
    assert out.closed and [a.status for a in out.answers] == [401]


async def test_a_full_server_answers_503_with_the_contract_body(tmp_path: Path, sqlite_template: Path) -> None:
    async with serve_app(tmp_path, sqlite_template, limit_concurrency=2) as served:
        key = await _key(served.rt)
        held = [await _held_body(served.port, key) for _ in range(2)]
        try:
            await asyncio.sleep(0.2)
            out = await exchange(served.port, get())
            assert out.closed and out.status == 503
            assert out.answers[0].error()["type"] == "service_unavailable_error"
            assert out.answers[0].headers.get("retry-after") == "1"
        finally:
            for _, writer in held:
                writer.close()
        await asyncio.sleep(0.2)
        assert (await exchange(served.port, get())).status == 200
