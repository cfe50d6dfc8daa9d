"""A cancelled fetch gives its connection back: against a real loopback origin and the real fetch client, fetches
cancelled at small varied moments (connecting, waiting for the answer, mid-body), cancelled twice, cancelled by a
failing sibling or by their own total deadline leave no connection ACTIVE or NEW in the client's pool and no socket
of this process to the origin beyond the pool's idle ones, and later fetches still succeed.

httpcore 1.0.9 leaks such connections when a native ``Task.cancel()`` lands at the wrong moment
(encode/httpcore#1093); every leak is an open socket and a pool place lost until the process restarts.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import AsyncIterator, Iterator

import httpcore
import httpx
import pytest

from fakes import mediagen
from fakes.media_server import MediaServer
from reelgate.errors import MediaError
from reelgate.media.fetch import FetchLimits, load_media, make_fetch_client

FIELD = "model_params.element_image_list.refer_images[0].image_url"
# Long enough that none of them ends a fetch here: a cancel must, and not by waiting for one of these.
LIMITS = FetchLimits(max_bytes=1_000_000, connect_timeout=10, read_timeout=10, total_timeout=30)
KEEPALIVE = 20  # the guarded transport's max_keepalive_connections
PICTURE = mediagen.jpeg(640, 480)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_fetch_client(allow_private=True, limits=LIMITS) as fetch_client:
        yield fetch_client


@pytest.fixture
def origin(server: MediaServer) -> MediaServer:
    """``/a.jpg`` answered at once; ``/slow.jpg`` promises 100 kB and sends a byte every 2 ms; ``/404`` fails."""
    server.serve("/a.jpg", PICTURE, "image/jpeg")
    server.trickle("/slow.jpg", interval=0.002)
    server.status("/404", 404)
    return server


async def fetch(url: str, client: httpx.AsyncClient, limits: FetchLimits = LIMITS) -> bytes:
    return await load_media(url, field=FIELD, kind="image", limits=limits, client=client, allow_private=True)


def pool(client: httpx.AsyncClient) -> httpcore.AsyncConnectionPool:
    transport = client._transport
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    return transport._pool


def sockets_to(port: int) -> int:
    """This process's TCP sockets whose peer is 127.0.0.1:``port`` (its fds, matched to /proc/net/tcp by inode)."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed since the listing
        if target.startswith("socket:["):
            ours.add(target[len("socket:[") : -1])
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[2] == f"0100007F:{port:04X}" and row[9] in ours)


async def assert_let_go(client: httpx.AsyncClient, port: int) -> None:
    """No request and no busy connection left in the pool; our only sockets to the origin are its idle ones."""
    await asyncio.sleep(0.05)  # a closed transport releases its socket on the loop's next turns
    connections = pool(client).connections
    assert [c for c in connections if not c.is_idle()] == []
    assert "Requests: 0 active, 0 queued" in repr(pool(client))
    assert sockets_to(port) == len(connections) <= KEEPALIVE


async def assert_still_fetches(client: httpx.AsyncClient, origin: MediaServer) -> None:
    # One after another: a burst would overflow the origin's listen backlog (5) and wait out SYN retries.
    for _ in range(10):
        assert await fetch(origin.url("/a.jpg"), client) == PICTURE
    await assert_let_go(client, origin.port)


async def cancel_at(delays: list[float], tasks: list[asyncio.Task[bytes]], *, twice: bool = False) -> None:
    """Cancel ``tasks[i]`` ``delays[i]`` seconds after the first started, in order of delay."""
    start = asyncio.get_running_loop().time()
    for delay, task in sorted(zip(delays, tasks, strict=True), key=lambda pair: pair[0]):
        await asyncio.sleep(max(0.0, start + delay - asyncio.get_running_loop().time()))
        task.cancel()
        if twice:
            await asyncio.sleep(0)  # the second cancel lands while the first is being handled (encode/httpx#3782)
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_fetches_cancelled_at_varied_moments_give_their_connections_back(
    client: httpx.AsyncClient, origin: MediaServer
) -> None:
    rng = random.Random(1093)
    outcomes: list[object] = []
    for _ in range(12):
        urls = [origin.url("/slow.jpg" if i % 4 == 0 else "/a.jpg") for i in range(25)]
        tasks = [asyncio.create_task(fetch(url, client)) for url in urls]
        # 0-5 ms: while connecting or waiting for the answer; 5-40 ms for the slow body: mid-body.
        delays = [rng.uniform(0.005, 0.04) if "slow" in url and i % 8 == 0 else rng.uniform(0, 0.005)
                  for i, url in enumerate(urls)]  # fmt: skip
        await cancel_at(delays, tasks)
        outcomes += [t.result() if not t.cancelled() else None for t in tasks]
    assert None in outcomes  # cancels took effect (a fast answer may still win its race)
    await assert_let_go(client, origin.port)
    await assert_still_fetches(client, origin)


async def test_a_fetch_cancelled_twice_gives_its_connection_back(
    client: httpx.AsyncClient, origin: MediaServer
) -> None:
    rng = random.Random(3782)
    for _ in range(8):
        tasks = [asyncio.create_task(fetch(origin.url("/slow.jpg" if i % 2 else "/a.jpg"), client)) for i in range(20)]
        await cancel_at([rng.uniform(0, 0.01) for _ in tasks], tasks, twice=True)
    await assert_let_go(client, origin.port)
    await assert_still_fetches(client, origin)


async def test_items_cancelled_by_a_failing_sibling_give_their_connections_back(
    client: httpx.AsyncClient, origin: MediaServer
) -> None:
    """As the media pipeline does: the first failure in a TaskGroup cancels the other items wherever they are."""
    for round_ in range(25):
        urls = [origin.url("/slow.jpg" if i % 3 == 0 else "/a.jpg") for i in range(8)]
        urls.insert(round_ % len(urls), origin.url("/404"))
        with pytest.raises(ExceptionGroup) as caught:
            async with asyncio.TaskGroup() as group:
                for url in urls:
                    group.create_task(fetch(url, client))
        assert all(isinstance(error, MediaError) for error in caught.value.exceptions)
    await assert_let_go(client, origin.port)
    await assert_still_fetches(client, origin)


async def test_the_total_deadline_mid_body_gives_the_connection_back(
    client: httpx.AsyncClient, origin: MediaServer
) -> None:
    rng = random.Random(830)
    for _ in range(12):
        limits = [FetchLimits(max_bytes=1_000_000, read_timeout=10, total_timeout=rng.uniform(0.001, 0.03))
                  for _ in range(10)]  # fmt: skip
        results = await asyncio.gather(*(fetch(origin.url("/slow.jpg"), client, each) for each in limits),
                                       return_exceptions=True)  # fmt: skip
        assert all(isinstance(r, MediaError) and "did not finish within" in r.message for r in results)
    await assert_let_go(client, origin.port)
    await assert_still_fetches(client, origin)


async def test_a_cancel_takes_effect_while_waiting_for_the_answer(
    client: httpx.AsyncClient, origin: MediaServer
) -> None:
    """Cancelled, not failed: a fetch that waited out its read timeout would raise MediaError instead."""
    origin.stall("/stall")
    task = asyncio.create_task(fetch(origin.url("/stall"), client))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_let_go(client, origin.port)


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose listener never accepts and whose queue is full: a new connection's SYN goes unanswered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=1):  # takes the one queued place
            yield port


async def test_a_cancel_takes_effect_while_connecting(client: httpx.AsyncClient, full_backlog: int) -> None:
    before = sockets_to(full_backlog)  # the socket filling the queue
    task = asyncio.create_task(fetch(f"http://127.0.0.1:{full_backlog}/a.jpg", client))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert pool(client).connections == []
    assert sockets_to(full_backlog) == before
