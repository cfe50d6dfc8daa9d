"""The HTTP protocol: uvicorn's httptools protocol with the limits it lacks (head size counted to the byte, head
time from accept, body time, connections per client and idle connections in total, request slots only for requests)
and the contract's JSON error body where uvicorn answers in plain text, so hostile clients cost a socket and a few
kilobytes, never unbounded memory or every slot."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httptools
import orjson
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from reelgate.api.connbook import ConnectionBook, client_key
from reelgate.errors import InvalidRequest, ServiceUnavailable

# Read at call time, so tests can patch them.
MAX_HEAD_BYTES = 64 * 1024  # request line + headers + the blank line, counted to the byte
HEAD_TIMEOUT = 10.0  # seconds from accept (or from a keep-alive request's first byte) to the whole request head
BODY_TIMEOUT = 30.0  # seconds for a body to arrive once its head has (a trickled upload holds a slot no longer)
MAX_CONNECTIONS_PER_CLIENT = 256  # per IPv4 address, per IPv6 /64
MAX_IDLE_CONNECTIONS = 1024  # per process: connections with no request in flight; past it the oldest idle is closed
_BLANK_LINE = b"\r\n\r\n"  # ends every head, and every chunked body (llhttp takes no bare LF)


def _closing_answer(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    """A whole JSON response the protocol writes itself, when no route will answer; the connection closes after."""
    return (b"HTTP/1.1 %s\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n%s\r\n%s"
            % (status, len(body), extra, body))  # fmt: skip


_431 = _closing_answer(b"431 Request Header Fields Too Large",
                       b'{"error":{"code":"headers_too_large","message":"request headers exceed 65536 bytes",'
                       b'"type":"invalid_request_error"}}')  # fmt: skip


async def _server_busy(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """The answer when the process already runs as many requests as it may (uvicorn's would be plain text)."""
    err = ServiceUnavailable("the server is at its limit of requests in flight; retry shortly", code="server_busy")
    body = orjson.dumps(err.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
               (b"retry-after", b"1"), (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _blank_line_end(tail: bytes, data: bytes) -> int:
    """The index in ``data`` just past the first blank line of ``tail + data`` (``tail``: the last bytes read
    before), or -1. Every head ends at such a place; a cut at a place that ends nothing is harmless."""
    if tail:
        for k in (3, 2, 1):
            if tail.endswith(_BLANK_LINE[:k]) and data.startswith(_BLANK_LINE[k:]):
                return 4 - k
    found = data.find(_BLANK_LINE)
    return -1 if found < 0 else found + 4


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The body's length when the head declares it; None for a chunked body (llhttp refuses both at once)."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Counts head bytes exactly, times the head from accept, caps connections per client and idle ones in total,
    and gives request slots (``limit_concurrency``) to requests, never to connections that have not sent a head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True  # in a head, or between messages (what comes next is a head)
        self._body_left: int | None = None  # Content-Length bytes still to come; None for a chunked body
        self._tail = b""  # the last bytes fed, where a blank line may have begun
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._client_key: str | None = None
        self._refusal: bytes | None = None  # an answer waiting for the answers to requests before it
        # uvicorn counts every open connection against limit_concurrency, so silent ones filled it; we count requests.
        self._max_requests = self.limit_concurrency
        self.limit_concurrency = None
        self._routes = self.app
        # One ledger per server (shared by its connections), kept on uvicorn's per-server state object.
        state: Any = self.server_state
        if not hasattr(state, "reelgate_book"):
            state.reelgate_book = ConnectionBook()
        self._book: ConnectionBook = state.reelgate_book

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.client:
            key = client_key(self.client[0])
            if not self._book.admit(key, MAX_CONNECTIONS_PER_CLIENT):
                transport.close()
                return
            self._client_key = key
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)  # from accept: silence counts
        self._book.set_idle(transport, MAX_IDLE_CONNECTIONS)

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._forget()  # the connection is the WebSocket protocol's from now on (no route of ours takes one)
        super().handle_websocket_upgrade()

    def _forget(self) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        book = self._book
        book.set_busy(self.transport)
        if self._client_key is not None:
            book.release(self._client_key)
            self._client_key = None

    def data_received(self, data: bytes) -> None:
        # Fed to the parser in pieces cut where a head or a message can end, so each head is counted from its own
        # first byte to its blank line, whatever the reads carry before and after it.
        while data and self._refusal is None and self.parser is not None and not self.transport.is_closing():
            cut = self._next_cut(data)
            piece, data = (data, b"") if cut >= len(data) else (data[:cut], data[cut:])
            if self._in_head:
                self._head_bytes += len(piece)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._refuse(_431)
                    return
            elif self._body_left is not None:
                self._body_left -= len(piece)
            self._tail = piece[-3:] if len(piece) >= 3 else (self._tail + piece)[-3:]
            super().data_received(piece)
            if self.parser is not None and self.parser.should_upgrade():
                return  # what follows an upgrade is not HTTP/1.1: uvicorn drops the rest of the read, as before
        self._arm_timers()

    def _next_cut(self, data: bytes) -> int:
        if not self._in_head and self._body_left:
            return self._body_left  # a Content-Length body ends there; a head may follow at once
        end = _blank_line_end(self._tail, data)
        return len(data) if end <= 0 else end

    def _arm_timers(self) -> None:
        if self.transport.is_closing():
            return
        if self._in_head:
            # A keep-alive request's head has begun (the first head's timer runs from accept).
            if self._head_bytes and self._head_timer is None:
                self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)
        elif self._body_timer is None:
            # Armed only when a body is still missing after this read: a body that comes with its head costs none.
            self._body_timer = self.loop.call_later(BODY_TIMEOUT, self._body_too_slow)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request llhttp cannot parse, as the contract's error body with the parser's reason
        (uvicorn calls this from inside its ``except httptools.HttpParserError``: that is the exception at hand)."""
        exc = sys.exception()
        reason = str(exc) if isinstance(exc, httptools.HttpParserError) and str(exc) else "it cannot be parsed"
        err = InvalidRequest(f"the request is not valid HTTP/1.1: {reason}", code="malformed_request")
        self._refuse(_closing_answer(b"400 Bad Request", orjson.dumps(err.body())))

    def _refuse(self, answer: bytes) -> None:
        """Write ``answer`` and close, after the answers to requests pipelined before it (in the order asked)."""
        if self.cycle is not None and not self.cycle.response_complete:
            self._refusal = answer  # nothing more is read: on_response_complete writes it
            self.flow.pause_reading()
            return
        self.transport.write(answer)
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False  # until on_message_complete, which comes at once for a request without a body
        self._head_bytes = 0
        self._body_left = _content_length(self.headers)
        self._cancel_head_timer()
        self._book.set_busy(self.transport)
        busy = self._max_requests is not None and len(self.tasks) >= self._max_requests
        self.app = _server_busy if busy else self._routes  # uvicorn reads self.app for this request only
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what arrives next on this connection is the next request's head
        self._tail = b""  # and no blank line of it can have begun in this one
        self._cancel_body_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle again unless a pipelined request started (then self.cycle is that request, not yet answered).
        if self.transport.is_closing() or not self.cycle.response_complete:
            return
        if self._refusal is not None:
            self.transport.write(self._refusal)
            self.transport.close()
        else:
            self._book.set_idle(self.transport, MAX_IDLE_CONNECTIONS)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.transport.close()

    def _body_too_slow(self) -> None:
        """Answer 408 (unless the route already answered) and close; the waiting route sees a disconnect."""
        self._body_timer = None
        if self._in_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_started:
            err = InvalidRequest(f"the request body did not arrive within {BODY_TIMEOUT:g} s", code="request_timeout")
            self.transport.write(_closing_answer(b"408 Request Timeout", orjson.dumps(err.body())))
        self.transport.close()

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
