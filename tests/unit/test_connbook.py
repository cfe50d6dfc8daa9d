"""Who a connection counts against (IPv4 per address, IPv6 per /64) and the ledger's per-client and idle caps."""

from __future__ import annotations

import asyncio

import pytest

from reelgate.api.connbook import ConnectionBook, client_key


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),  # same /64: the same client, however many addresses it uses
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),  # the next /64 is another
        ("::ffff:203.0.113.7", "203.0.113.7"),  # a dual-stack socket's IPv4 client counts as that IPv4 address
        ("::1", "::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("/run/reelgate.sock", "/run/reelgate.sock"),
    ],
)
def test_client_key(host: str, key: str) -> None:
    assert client_key(host) == key


def test_addresses_of_one_ipv6_64_share_one_allowance() -> None:
    book = ConnectionBook()
    hosts = [f"2001:db8:0:7::{n:x}" for n in range(1, 6)]
    assert [book.admit(client_key(h), 3) for h in hosts] == [True, True, True, False, False]
    assert book.admit(client_key("2001:db8:0:8::1"), 3)
    book.release(client_key(hosts[0]))
    assert book.held("2001:db8:0:7::/64") == 2 and book.admit(client_key(hosts[4]), 3)


class _Transport(asyncio.BaseTransport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_idle_connections_past_the_cap_close_oldest_first_and_busy_ones_never() -> None:
    book = ConnectionBook()
    a, b, c, d, busy = (_Transport() for _ in range(5))
    for t in (a, b, busy, c):
        book.set_idle(t, 3)  # a was closed here to make room: it had been idle longest
    assert [t.closed for t in (a, b, busy, c)] == [True, False, False, False]
    book.set_busy(busy)
    book.set_idle(b, 3)  # b is idle again from now, so c is older
    book.set_idle(d, 2)
    assert [t.closed for t in (b, c, d, busy)] == [False, True, False, False] and book.idle_count == 2
