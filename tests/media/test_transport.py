"""guarded_transport on a real loopback server: resolve once, check, connect to that address, TLS by name."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import httpx
import pytest
import trustme

from fakes.media_server import MediaServer
from reelgate.netguard import BlockedAddress, Resolver, guarded_transport


def fake_dns(answers: dict[str, list[str]], calls: list[str]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[host]

    return resolve


def client(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, trust_env=False, timeout=5)


async def test_connects_to_loopback_when_private_is_allowed(server: MediaServer) -> None:
    server.serve("/a", b"hello", "text/plain")
    async with client(guarded_transport(allow_private=True)) as c:
        response = await c.get(server.url("/a"))
    assert response.status_code == 200 and response.content == b"hello"


async def test_refuses_loopback_without_sending_anything(server: MediaServer) -> None:
    server.serve("/a", b"hello", "text/plain")
    async with client(guarded_transport(allow_private=False)) as c:
        with pytest.raises(BlockedAddress, match="127.0.0.1"):
            await c.get(server.url("/a"))
        with pytest.raises(BlockedAddress):
            await c.get(f"http://0x7f.1:{server.port}/a")  # odd spellings are checked by the transport too
    assert server.seen == []


async def test_host_name_connects_to_the_resolved_address_only(server: MediaServer) -> None:
    """``media.test`` exists nowhere but in the fake resolver: success proves there was no second lookup."""
    server.serve("/a", b"pinned", "text/plain")
    calls: list[str] = []
    transport = guarded_transport(allow_private=True, resolver=fake_dns({"media.test": ["127.0.0.1"]}, calls))
    async with client(transport) as c:
        first = await c.get(server.url("/a", host="media.test"))
        second = await c.get(server.url("/a", host="media.test"))
    assert first.content == second.content == b"pinned"
    assert calls == ["media.test"]  # the kept-alive connection stays on the address checked once
    assert server.seen[0].headers["Host"] == f"media.test:{server.port}"


async def test_host_name_resolving_to_private_is_refused(server: MediaServer) -> None:
    server.serve("/a", b"secret", "text/plain")
    calls: list[str] = []
    transport = guarded_transport(allow_private=False, resolver=fake_dns({"media.test": ["127.0.0.1"]}, calls))
    async with client(transport) as c:
        with pytest.raises(BlockedAddress) as caught:
            await c.get(server.url("/a", host="media.test"))
    assert caught.value.host == "media.test" and caught.value.address == "127.0.0.1"
    assert server.seen == []


async def test_unresolvable_host_is_a_connect_error() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    async with client(guarded_transport(allow_private=True, resolver=nxdomain)) as c:
        with pytest.raises(httpx.ConnectError, match="could not resolve"):
            await c.get("http://nowhere.test/")


async def test_slow_resolver_is_a_connect_timeout() -> None:
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return ["127.0.0.1"]

    async with client(guarded_transport(allow_private=True, resolver=slow, connect_timeout=0.2)) as c:
        with pytest.raises(httpx.ConnectTimeout):
            await c.get("http://slow.test/")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[MediaServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("media.test").configure_cert(context)
    with MediaServer(ssl_context=context) as media_server:
        yield media_server


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_tls_verifies_the_certificate_against_the_host_name(tls_server: MediaServer, ca: trustme.CA) -> None:
    tls_server.serve("/a", b"secure", "text/plain")
    resolver = fake_dns({"media.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}, [])
    transport = guarded_transport(allow_private=True, resolver=resolver, verify=trusting(ca))
    async with client(transport) as c:
        response = await c.get(tls_server.url("/a", host="media.test"))
        assert response.content == b"secure"
        # Same address, another name: the certificate does not match it, so the pinned IP never replaces the name.
        with pytest.raises(httpx.ConnectError, match="certificate"):
            await c.get(tls_server.url("/a", host="other.test"))
