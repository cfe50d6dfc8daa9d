"""One server's connection ledger: how many connections each client holds, and which are idle, oldest first."""

from __future__ import annotations

import asyncio
import ipaddress


def client_key(host: str) -> str:
    """Who a connection counts against: an IPv4 address, or an IPv6 /64 (one subscriber's allocation, where every
    address costs its owner nothing); an IPv4-mapped IPv6 address counts as its IPv4 address."""
    if ":" not in host:
        return host
    try:
        ip = ipaddress.IPv6Address(host)
    except ValueError:
        return host  # not an address (a Unix socket path, say): count it as given
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return f"{ipaddress.IPv6Address(int(ip) >> 64 << 64)}/64"


class ConnectionBook:
    """Shared by the connections of one uvicorn server (one process, one event loop: no locking).

    A connection is idle from accept until its request head is in, and again after each answer until the next
    head is in. Idle connections cost the server a socket each and do no work, so their number is capped: past the
    cap the one idle longest is closed. A connection with a request in flight is never closed for room."""

    def __init__(self) -> None:
        self._per_client: dict[str, int] = {}
        self._idle: dict[asyncio.BaseTransport, None] = {}  # insertion order is idle-since order

    def admit(self, key: str, limit: int) -> bool:
        """Count a new connection of ``key``; False (nothing counted) when the client already holds ``limit``."""
        held = self._per_client.get(key, 0)
        if held >= limit:
            return False
        self._per_client[key] = held + 1
        return True

    def release(self, key: str) -> None:
        held = self._per_client.get(key, 0) - 1
        if held > 0:
            self._per_client[key] = held
        else:
            self._per_client.pop(key, None)

    def held(self, key: str) -> int:
        return self._per_client.get(key, 0)

    def set_idle(self, transport: asyncio.BaseTransport, cap: int) -> None:
        """Mark ``transport`` idle from now, and close the longest-idle connections beyond ``cap``."""
        self._idle.pop(transport, None)
        self._idle[transport] = None
        while len(self._idle) > cap:
            oldest = next(iter(self._idle))
            del self._idle[oldest]
            oldest.close()

    def set_busy(self, transport: asyncio.BaseTransport) -> None:
        self._idle.pop(transport, None)

    @property
    def idle_count(self) -> int:
        return len(self._idle)
