"""Why a media fetch failed, twice over: in words safe for a tenant, and in full for the operator's log.

A tenant learns what they can act on about their own URL: the host, and whether its name did not resolve, resolved
to a non-public address, refused or dropped the connection, failed TLS, or took too long. Never the addresses a
name resolved to, errno text or resolver messages: those describe our network (a name resolving to 10.0.0.7 would
tell a tenant what we can reach) and go to the operator's log only, with the exception chain.
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import TypeVar

import httpx

from reelgate.netguard import BlockedAddress, ConnectFailed, ConnectTimedOut, ResolveFailed, ResolveTimedOut

E = TypeVar("E", bound=BaseException)

NON_PUBLIC = "it resolves to a non-public address"
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL}
_NO_SUCH_NAME = {getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name)}
_CHAIN_LIMIT = 8


def cause(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of ``kind`` in ``exc``'s chain (itself, its causes and contexts), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _CHAIN_LIMIT:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def connection_reason(exc: BaseException, *, connect_timeout: float, read_timeout: float) -> str:
    """A connection-level failure (anything before or while the answer streams) as a tenant may read it."""
    blocked = cause(exc, BlockedAddress)
    if blocked is not None:
        return "its host name resolves to no address" if blocked.address is None else NON_PUBLIC
    if cause(exc, ResolveTimedOut) is not None:
        return "the DNS lookup of its host name timed out"
    if cause(exc, ResolveFailed) is not None:
        return _dns_reason(cause(exc, socket.gaierror))
    cert = cause(exc, ssl.SSLCertVerificationError)
    if cert is not None:
        # OpenSSL's fixed vocabulary about the tenant's own certificate ("certificate has expired", ...).
        return f"its TLS certificate could not be verified ({cert.verify_message})"
    if cause(exc, ssl.SSLError) is not None:
        return "the TLS handshake failed"
    if cause(exc, ConnectTimedOut) is not None or isinstance(exc, httpx.ConnectTimeout):
        return f"the connection timed out (no answer within {connect_timeout:g} s)"
    if isinstance(exc, httpx.ReadTimeout):
        return f"the server sent nothing for {read_timeout:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return "the connection timed out"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection broke before the whole file arrived"
    return _socket_reason(exc)


def _dns_reason(error: socket.gaierror | None) -> str:
    if error is not None and error.errno in _NO_SUCH_NAME:
        return "its host name could not be resolved (DNS: no such host)"
    if error is not None and error.errno == socket.EAI_AGAIN:
        return "its host name could not be resolved (DNS: temporary failure, try again later)"
    return "its host name could not be resolved (DNS lookup failed)"


def _socket_reason(exc: BaseException) -> str:
    if cause(exc, ConnectionRefusedError) is not None:
        return "connection refused"
    if cause(exc, ConnectionResetError) is not None:
        return "the connection was reset"
    failed = cause(exc, OSError)
    if failed is not None and failed.errno in _UNREACHABLE:
        return "the host is unreachable"
    return "the connection failed"


def addresses(exc: BaseException) -> list[str]:
    """The addresses a failed connection tried or was refused, for the operator's log."""
    blocked = cause(exc, BlockedAddress)
    if blocked is not None:
        return [blocked.address] if blocked.address else []
    tried = cause(exc, ConnectFailed) or cause(exc, ConnectTimedOut)
    return list(tried.addresses) if tried is not None else []


def detail(exc: BaseException) -> str:
    """The whole chain, class and text, for the operator's log: resolver errors and addresses included."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(parts) < _CHAIN_LIMIT:
        seen.add(id(current))
        parts.append(f"{type(current).__module__}.{type(current).__qualname__}: {current}")
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)[:2000]
