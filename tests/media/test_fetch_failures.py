"""A fetch that fails names the field, the host and the reason a tenant can act on, over real loopback servers:
DNS failure, non-public address, connection refused, connect and read timeouts, TLS, HTTP status, too large, wrong
content type; the operator's log (the ``reelgate.media`` logger) carries the full detail the message leaves out."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import trustme

from fakes import mediagen
from fakes.media_server import MediaServer
from reelgate.errors import MediaError
from reelgate.media.fetch import FetchLimits, content_type_problem, load_media, make_fetch_client
from reelgate.netguard import Resolver

FIELD = "model_params.element_image_list.refer_images[1].image_url"
LIMITS = FetchLimits(max_bytes=1_000_000, connect_timeout=0.3, read_timeout=0.3, total_timeout=3, max_redirects=3)
PHOTO = mediagen.jpeg(320, 320)


def resolver(answers: dict[str, list[str] | OSError]) -> Resolver:
    """Names that exist only here (no query leaves the machine); an OSError answer is raised, as the OS would."""

    async def resolve(host: str, port: int) -> list[str]:
        answer = answers[host]
        if isinstance(answer, OSError):
            raise answer
        return answer

    return resolve


DNS = resolver({
    "media.test": ["127.0.0.1"],
    "other.test": ["127.0.0.1"],
    "nowhere.test": socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    "flaky.test": socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
})  # fmt: skip


@pytest.fixture
async def loopback() -> AsyncIterator[httpx.AsyncClient]:
    async with make_fetch_client(allow_private=True, limits=LIMITS, resolver=DNS) as client:
        yield client


async def failure(source: str, client: httpx.AsyncClient, *, kind: str = "image", allow_private: bool = True,
                  limits: FetchLimits = LIMITS) -> MediaError:  # fmt: skip
    with pytest.raises(MediaError) as caught:
        await load_media(source, field=FIELD, kind="image" if kind == "image" else "video", limits=limits,
                         client=client, allow_private=allow_private, task_id="task-unified-1-abcdefgh")  # fmt: skip
    error = caught.value
    assert error.param == FIELD and error.code == (
        "image_processing_error" if kind == "image" else "invalid_parameters"
    )
    # Nothing about the server's settings: no variable names, no allow-list (the log may say more).
    assert "REELGATE" not in error.message and "allow" not in error.message.lower()
    return error


def said(host: str, reason: str) -> str:
    return f"could not fetch {FIELD} from {host}: {reason}"


def logged(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    records = [r for r in caplog.records if r.name == "reelgate.media" and r.getMessage() == "media fetch failed"]
    assert len(records) == 1, caplog.records
    assert records[0].levelno == logging.WARNING
    return records[0]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose listener never accepts and whose queue is full: a new connection's SYN goes unanswered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    filler = socket.create_connection(("127.0.0.1", port), timeout=1)  # takes the one queued place
    try:
        yield port
    finally:
        filler.close()
        listener.close()


# --- DNS ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "reason"),
    [("nowhere.test", "its host name could not be resolved (DNS: no such host)"),
     ("flaky.test", "its host name could not be resolved (DNS: temporary failure, try again later)")],
)  # fmt: skip
async def test_dns_failure(loopback: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, host: str,
                           reason: str) -> None:  # fmt: skip
    error = await failure(f"https://{host}/a.jpg", loopback)
    assert error.message == said(host, reason)
    record = logged(caplog)
    assert "gaierror" in record.error and record.host == host  # type: ignore[attr-defined]


async def test_slow_dns_is_a_dns_timeout() -> None:
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return ["127.0.0.1"]

    async with make_fetch_client(allow_private=True, limits=LIMITS, resolver=slow) as client:
        error = await failure("http://slow.test/a.jpg", client)
    assert error.message == said("slow.test", "the DNS lookup of its host name timed out")


# --- non-public ---------------------------------------------------------------------------------------------------


async def test_a_name_resolving_to_a_non_public_address_says_so_plainly(caplog: pytest.LogCaptureFixture) -> None:
    with MediaServer() as server:
        server.serve("/a.jpg", PHOTO, "image/jpeg")
        async with make_fetch_client(allow_private=False, limits=LIMITS, resolver=DNS) as guarded:
            error = await failure(server.url("/a.jpg", host="media.test"), guarded, allow_private=False)
        assert server.seen == []
    assert error.message == said(f"media.test:{server.port}", "it resolves to a non-public address")
    assert "127.0.0.1" not in error.message
    record = logged(caplog)
    assert record.addresses == ["127.0.0.1"] and "BlockedAddress" in record.error  # type: ignore[attr-defined]


async def test_a_literal_non_public_address_is_a_url_rule() -> None:
    async with make_fetch_client(allow_private=False, limits=LIMITS, resolver=DNS) as guarded:
        error = await failure("http://10.0.0.7/a.jpg", guarded, allow_private=False)
    assert error.message == f"{FIELD} must not point to a private, loopback or reserved address"


# --- the connection -----------------------------------------------------------------------------------------------


async def test_connection_refused_names_the_host_not_the_address(loopback: httpx.AsyncClient,
                                                                 caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    port = closed_port()
    error = await failure(f"http://media.test:{port}/a.jpg?sig=secret", loopback)
    assert error.message == said(f"media.test:{port}", "connection refused")
    record = logged(caplog)
    assert record.addresses == ["127.0.0.1"] and record.task_id == "task-unified-1-abcdefgh"  # type: ignore[attr-defined]
    assert "ConnectionRefusedError" in record.error and "ConnectFailed" in record.error  # type: ignore[attr-defined]
    assert record.url == f"http://media.test:{port}/a.jpg" and record.field == FIELD  # type: ignore[attr-defined]
    assert record.reason == "connection refused"  # type: ignore[attr-defined]


async def test_connect_timeout(loopback: httpx.AsyncClient, full_backlog: int) -> None:
    error = await failure(f"http://127.0.0.1:{full_backlog}/a.jpg", loopback)
    assert error.message == said(f"127.0.0.1:{full_backlog}", "the connection timed out (no answer within 0.3 s)")


async def test_read_timeout(loopback: httpx.AsyncClient) -> None:
    with MediaServer() as server:
        server.stall("/stall")
        error = await failure(server.url("/stall"), loopback)
    assert error.message == said(f"127.0.0.1:{server.port}", "the server sent nothing for 0.3 s")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_an_untrusted_certificate(ca: trustme.CA, loopback: httpx.AsyncClient) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("media.test").configure_cert(context)
    with MediaServer(ssl_context=context) as server:
        server.serve("/a.jpg", PHOTO, "image/jpeg")
        error = await failure(server.url("/a.jpg", host="media.test"), loopback)
    assert error.message.startswith(said(f"media.test:{server.port}", "its TLS certificate could not be verified ("))


# --- the answer ---------------------------------------------------------------------------------------------------


async def test_http_status_and_its_peer_in_the_log(loopback: httpx.AsyncClient,
                                                   caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    with MediaServer() as server:
        server.status("/gone.jpg", 410)
        error = await failure(server.url("/gone.jpg", host="media.test"), loopback)
    assert error.message == said(f"media.test:{server.port}", "the server answered HTTP 410 Gone")
    record = logged(caplog)
    assert record.status_code == 410 and record.peer == f"127.0.0.1:{server.port}"  # type: ignore[attr-defined]


async def test_too_large(loopback: httpx.AsyncClient) -> None:
    with MediaServer() as server:
        server.serve("/big.jpg", b"\xff" * (LIMITS.max_bytes + 1), "image/jpeg")
        error = await failure(server.url("/big.jpg"), loopback)
    assert error.message == said(f"127.0.0.1:{server.port}", "the file is larger than 1000000 bytes")


@pytest.mark.parametrize(
    ("content_type", "kind", "reason"),
    [("text/html; charset=utf-8", "image", "the server sent text/html, not an image"),
     ("application/json", "image", "the server sent application/json, not an image"),
     ("application/problem+json", "video", "the server sent application/problem+json, not a video"),
     ("image/jpeg", "video", "the server sent image/jpeg, not a video"),
     ("video/mp4", "image", "the server sent video/mp4, not an image")],
)  # fmt: skip
async def test_wrong_content_type(loopback: httpx.AsyncClient, content_type: str, kind: str, reason: str) -> None:
    with MediaServer() as server:
        server.serve("/file", PHOTO, content_type)
        error = await failure(server.url("/file", host="media.test"), loopback, kind=kind)
    assert error.message == said(f"media.test:{server.port}", reason)


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "binary/octet-stream", "image/jpeg",
                                          "IMAGE/JPEG; name=a.jpg", "image/gif", "application/x-unknown", "x"])  # fmt: skip
async def test_generic_or_matching_types_leave_it_to_the_content(loopback: httpx.AsyncClient,
                                                                 content_type: str | None) -> None:  # fmt: skip
    """Many servers send one generic type for every file: the content decides (a GIF is refused by its bytes)."""
    with MediaServer() as server:
        if content_type is None:
            server.route("/file", lambda h: (h.send_response(200), h.send_header("Content-Length", str(len(PHOTO))),
                                             h.end_headers(), h.wfile.write(PHOTO)))  # fmt: skip
        else:
            server.serve("/file", PHOTO, content_type)
        data = await load_media(server.url("/file"), field=FIELD, kind="image", limits=LIMITS, client=loopback,
                                allow_private=True)  # fmt: skip
    assert data == PHOTO


def test_content_type_rules_for_videos() -> None:
    for accepted in ("video/mp4", "video/quicktime", "application/mp4", "application/octet-stream", ""):
        assert content_type_problem(accepted, "video") is None, accepted
    assert content_type_problem("text/plain", "video") == "the server sent text/plain, not a video"


# --- redirects ----------------------------------------------------------------------------------------------------


async def test_a_failure_after_a_redirect_names_both_hosts(loopback: httpx.AsyncClient) -> None:
    port = closed_port()
    with MediaServer() as server:
        server.redirect("/r", f"http://other.test:{port}/a.jpg")
        error = await failure(server.url("/r", host="media.test"), loopback)
    where = f"other.test:{port} (redirected from media.test:{server.port})"
    assert error.message == said(where, "connection refused")


async def test_a_refused_redirect_names_the_rule_not_the_target(caplog: pytest.LogCaptureFixture) -> None:
    with MediaServer() as server:
        server.redirect("/r", "http://169.254.169.254/latest/meta-data")
        async with make_fetch_client(allow_private=True, limits=LIMITS, resolver=DNS) as client:
            error = await failure(server.url("/r", host="media.test"), client, allow_private=False)
    assert error.message == said(f"media.test:{server.port}", "a redirect was refused (its target must not point "
                                 "to a private, loopback or reserved address)")  # fmt: skip
    assert "169.254" not in error.message
    assert logged(caplog).location == "http://169.254.169.254/latest/meta-data"  # type: ignore[attr-defined]
