"""The HTTP protocol: uvicorn's httptools protocol with the limits it lacks (header size, header time, body time,
per-client connections), so hostile clients cost a socket and a few kilobytes, never unbounded memory or every
slot."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from reelgate.errors import InvalidRequest

MAX_HEAD_BYTES = 64 * 1024  # request line + headers
HEAD_TIMEOUT = 10.0  # seconds to send the whole request head (slowloris)
BODY_TIMEOUT = 30.0  # seconds for a body to arrive once its head has (a trickled upload holds a slot no longer)
MAX_CONNECTIONS_PER_CLIENT = 256


def _closing_answer(status: bytes, body: bytes) -> bytes:
    """A whole JSON response the protocol writes itself, when no route will answer; the connection closes after."""
    return (b"HTTP/1.1 %s\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(body), body))  # fmt: skip


_431 = _closing_answer(b"431 Request Header Fields Too Large",
                       b'{"error":{"code":"headers_too_large","message":"request headers exceed 65536 bytes",'
                       b'"type":"invalid_request_error"}}')  # fmt: skip


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Counts head bytes as they arrive, times the head, and caps open connections per client address."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._client_key: str | None = None

    def _per_client(self) -> Counter[str]:
        # One counter per server (shared by its connections), kept on uvicorn's per-server state object.
        state: Any = self.server_state
        if not hasattr(state, "reelgate_clients"):
            state.reelgate_clients = Counter()
        counter: Counter[str] = state.reelgate_clients
        return counter

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.client:
            self._client_key = self.client[0]
            counts = self._per_client()
            counts[self._client_key] += 1
            if counts[self._client_key] > MAX_CONNECTIONS_PER_CLIENT:
                transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        if self._client_key is not None:
            counts = self._per_client()
            counts[self._client_key] -= 1
            if counts[self._client_key] <= 0:
                del counts[self._client_key]
            self._client_key = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)
            # The chunk that ends the head may carry body bytes too; a read is at most 256 KiB, so a legitimate
            # head is never refused, and an endless one is cut at the limit plus one read.
            if self._head_bytes - len(data) > MAX_HEAD_BYTES:
                self.transport.write(_431)
                self.transport.close()
                return
        super().data_received(data)
        # Armed only when a body is still missing after this read (the head is done, the message is not): a body
        # that comes with its head (nearly every request) costs no timer.
        if not self._in_head and self._body_timer is None and not self.transport.is_closing():
            self._body_timer = self.loop.call_later(BODY_TIMEOUT, self._body_too_slow)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what arrives next on this connection is the next request's head
        self._cancel_body_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False  # until on_message_complete, which comes at once for a request without a body
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

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
