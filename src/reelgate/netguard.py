"""Is this address public? URL checks and resolve-and-pin connections for media fetch and callbacks."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import unquote, urlsplit

import httpcore
import httpx
import idna

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2048

# Immutable tables, not state: every range a server-side request must never reach.
_V4_NON_PUBLIC: tuple[IPv4Network, ...] = tuple(
    IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, home of cloud metadata services
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes 255.255.255.255
    )
)
# Only 2000::/3 is allocated global unicast; everything else (::, ::1, fc00::/7, fe80::/10, ff00::/8, ...)
# is not public.  Inside 2000::/3 these are still not public (Teredo could tunnel anywhere).
_V6_GLOBAL_UNICAST = IPv6Network("2000::/3")
_V6_NON_PUBLIC: tuple[IPv6Network, ...] = tuple(
    IPv6Network(n)
    for n in (
        "2001::/32",  # Teredo
        "2001:2::/48",  # benchmarking
        "2001:10::/28",  # ORCHID
        "2001:20::/28",  # ORCHIDv2
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)
# IPv6 forms that carry an IPv4 address in their last 32 bits; the embedded address decides.
_V6_EMBEDDING_V4: tuple[IPv6Network, ...] = tuple(
    IPv6Network(n)
    for n in (
        "::/96",  # IPv4-compatible (deprecated), also covers :: and ::1
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # SIIT IPv4-translated
        "64:ff9b::/96",  # NAT64 well-known prefix
    )
)
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_HOSTNAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*\.?")
_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdef"}
# Full stops that URL parsers (UTS #46 mapping) treat as "." in a host.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_MAX_ADDRESSES_TRIED = 4


class BlockedAddress(Exception):
    """A connection was refused because the host is (or resolves to) a non-public address, or to none."""

    def __init__(self, host: str, address: str | None) -> None:
        if address is None:
            message = f"connection to {host} refused: it resolved to no address"
        else:
            message = f"connection to {host} refused: {address} is a private, loopback or reserved address"
        super().__init__(message)
        self.host = host
        self.address = address


class ResolveFailed(httpcore.ConnectError):
    """The host name could not be resolved; the resolver's own error (a ``socket.gaierror``, ...) is the cause."""

    def __init__(self, host: str, error: OSError) -> None:
        super().__init__(f"could not resolve {host}: {error}")
        self.host = host


class ResolveTimedOut(httpcore.ConnectTimeout):
    """The resolver did not answer within the connect budget."""

    def __init__(self, host: str) -> None:
        super().__init__(f"resolving {host} timed out")
        self.host = host


class ConnectFailed(httpcore.ConnectError):
    """No checked address of ``host`` took the connection; the last address's error is the cause."""

    def __init__(self, host: str, addresses: list[str]) -> None:
        super().__init__(f"could not connect to {host} (tried {', '.join(addresses)})")
        self.host = host
        self.addresses = addresses


class ConnectTimedOut(httpcore.ConnectTimeout):
    """No checked address of ``host`` answered within the connect timeout."""

    def __init__(self, host: str, addresses: list[str]) -> None:
        super().__init__(f"connecting to {host} timed out (tried {', '.join(addresses)})")
        self.host = host
        self.addresses = addresses


def is_public_ip(ip: IPAddress) -> bool:
    """True only for addresses on the public internet; IPv6 wrappers of IPv4 are judged by the IPv4 inside."""
    if isinstance(ip, IPv4Address):
        return not any(ip in net for net in _V4_NON_PUBLIC)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return is_public_ip(embedded)
    return ip in _V6_GLOBAL_UNICAST and not any(ip in net for net in _V6_NON_PUBLIC)


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _V6_EMBEDDING_V4):
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells in any form a resolver or browser accepts, or None for a real host name."""
    text = unicodedata.normalize("NFKC", host).translate(_DOTS).lower()
    if text.startswith("[") and text.endswith("]"):
        return _parse_ipv6(text[1:-1])
    if ":" in text:
        return _parse_ipv6(text)
    return _parse_ipv4(text)


def _parse_ipv6(text: str) -> IPv6Address | None:
    # A zone id ("%eth0", or "%25eth0" inside a URL) selects an interface, not another address.
    try:
        return IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return None


def _parse_ipv4(text: str) -> IPv4Address | None:
    """inet_aton / WHATWG rules: 1-4 parts, decimal, octal (0...) or hex (0x...); the last fills the rest."""
    parts = text.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # one trailing dot is the root label, still the same address
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_parse_ipv4_number(part) for part in parts]
    if any(n is None for n in numbers):
        return None
    *head, last = [n for n in numbers if n is not None]
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return IPv4Address(value)


def _parse_ipv4_number(part: str) -> int | None:
    if part.startswith("0x"):
        digits, base = part[2:], 16
        if digits == "":
            return 0  # WHATWG reads a bare "0x" as zero
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    # int() alone would also accept "_", "+" and spaces, which no resolver does.
    if not digits or any(c not in _DIGITS[base] for c in digits):
        return None
    return int(digits, base)


def url_problem(url: str, *, allow_private: bool, schemes: tuple[str, ...]) -> str | None:
    """Why ``url`` may not be fetched, as a phrase to follow the field name ("must use https"), or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in url):
        # Parsers disagree about these (a backslash is "/" to a browser, userinfo to urllib): refuse them.
        return "must not contain spaces, control characters or backslashes"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    allowed = set(schemes) | ({"http"} if allow_private else set())
    if parts.scheme.lower() not in allowed:
        return f"must use {' or '.join(sorted(allowed))}"
    if "@" in parts.netloc:
        return "must not contain user credentials (user@host)"
    if not parts.hostname:
        return "must include a host"
    problem = _host_problem(unquote(parts.hostname), allow_private=allow_private)
    if problem is None and not _httpx_accepts(url):
        return "is not a valid URL"
    return problem


def _httpx_accepts(url: str) -> bool:
    # The URL is fetched by httpx, so it must parse there too, not only in urllib.
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return True


def _host_problem(host: str, *, allow_private: bool) -> str | None:
    ascii_host = _ascii_hostname(host)
    ip = parse_ip_literal(host if ascii_host is None else ascii_host)
    if ip is not None:
        if allow_private or is_public_ip(ip):
            return None
        return "must not point to a private, loopback or reserved address"
    if ascii_host is None:
        return "must have a valid host name"
    if _ends_in_number(ascii_host):
        # "1.2.3.4.5" or "256.1.1.1": not an address, and resolvers treat such names unpredictably.
        return "must have a valid IP address or host name"
    if not allow_private and _is_local_name(ascii_host):
        return "must not point to localhost"
    return None


def _ascii_hostname(host: str) -> str | None:
    name = host.lower()
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return None
    if len(name) > 254 or not _HOSTNAME.fullmatch(name):
        return None
    return name


def _ends_in_number(host: str) -> bool:
    last = host.rstrip(".").rsplit(".", 1)[-1]
    return last.isdigit() or (last.startswith("0x") and all(c in _DIGITS[16] for c in last[2:]))


def _is_local_name(host: str) -> bool:
    name = host.rstrip(".")
    return name in _LOCAL_NAMES or name.endswith(".localhost")


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve_checked(
    host: str, port: int, *, allow_private: bool, resolver: Resolver | None = None
) -> list[IPAddress]:
    """Every address ``host`` resolves to, or BlockedAddress when any is non-public (or none comes back).

    Resolver failures (``socket.gaierror``, other ``OSError``) propagate unchanged.
    """
    literal = parse_ip_literal(host)
    if literal is not None:
        answers = [str(literal)]
    else:
        answers = await (resolver or system_resolver)(host, port)
    addresses: list[IPAddress] = []
    for answer in answers:
        ip = parse_ip_literal(answer)
        if ip is None:
            raise BlockedAddress(host, answer)  # a resolver answer we cannot judge is not trusted
        if not allow_private and not is_public_ip(ip):
            raise BlockedAddress(host, str(ip))
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise BlockedAddress(host, None)
    return addresses


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks the host once per new connection, then connects to a checked address only."""

    def __init__(self, *, allow_private: bool, resolver: Resolver | None, connect_timeout: float) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private
        self._resolver = resolver
        self._connect_timeout = connect_timeout

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        failure: Exception | None = None
        tried: list[str] = []
        for address in addresses[:_MAX_ADDRESSES_TRIED]:
            tried.append(str(address))
            try:
                # An IP literal: the inner backend does no DNS lookup, so nothing can race the check.
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve_checked never returns an empty list
        # Name the addresses tried (for the operator's log; callers keep them from tenants) and keep the cause as
        # the context too: httpcore's pool re-raises ``from None``, which drops a cause but not a context.
        kind = ConnectTimedOut if isinstance(failure, httpcore.ConnectTimeout) else ConnectFailed
        error = kind(host, tried)
        error.__context__ = failure
        raise error from failure

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        budget = self._connect_timeout if timeout is None else min(timeout, self._connect_timeout)
        try:
            async with asyncio.timeout(budget):
                return await resolve_checked(host, port, allow_private=self._allow_private, resolver=self._resolver)
        except TimeoutError:
            raise ResolveTimedOut(host) from None
        except OSError as exc:
            raise ResolveFailed(host, exc) from exc

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("unix sockets are not reachable through the network guard")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request/response/exception mapping) over a connection pool of pinned sockets."""

    def __init__(self, *, backend: _PinnedBackend, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            network_backend=backend,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,  # httpx's own default; a bare httpcore pool keeps idle connections forever
        )


def guarded_transport(
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    verify: ssl.SSLContext | bool = True,
    connect_timeout: float = 5.0,
) -> httpx.AsyncBaseTransport:
    """An httpx transport that connects only to addresses ``resolve_checked`` approved, pinned per connection.

    TLS still verifies the certificate against (and sends SNI for) the URL's host name.  A refused address
    surfaces from ``client.send``/``client.get`` as :class:`BlockedAddress` itself (not as an
    ``httpx.HTTPError``); an unresolvable host as ``httpx.ConnectError`` caused by :class:`ResolveFailed`, a slow
    resolver as ``httpx.ConnectTimeout`` caused by :class:`ResolveTimedOut`, and an address that refuses or does
    not answer as :class:`ConnectFailed` / :class:`ConnectTimedOut` (naming the addresses tried) under httpx's
    own class.  Every new connection is checked, so a followed redirect is checked too.
    """
    backend = _PinnedBackend(allow_private=allow_private, resolver=resolver, connect_timeout=connect_timeout)
    ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
    return _GuardedTransport(backend=backend, ssl_context=ssl_context)
