"""load_media over a real loopback server: success paths, redirects, address checks, size and time bounds."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from fakes import mediagen
from fakes.media_server import MediaServer
from reelgate.errors import MediaError
from reelgate.media.fetch import FetchLimits, decode_inline, load_media, make_fetch_client
from reelgate.media.images import inspect_image
from reelgate.params import is_url

FIELD = "model_params.element_image_list.refer_images[0].image_url"
LIMITS = FetchLimits(max_bytes=1_000_000, connect_timeout=1, read_timeout=1, total_timeout=3, max_redirects=3)
DNS = {"media.test": ["127.0.0.1"]}


async def fake_dns(host: str, port: int) -> list[str]:
    return DNS[host]


@pytest.fixture
async def loopback() -> AsyncIterator[httpx.AsyncClient]:
    """A client allowed onto loopback, for the fetch mechanics; ``media.test`` resolves to 127.0.0.1."""
    async with make_fetch_client(allow_private=True, limits=LIMITS, resolver=fake_dns) as client:
        yield client


@pytest.fixture
async def guarded() -> AsyncIterator[httpx.AsyncClient]:
    """A production-like client: private addresses refused at connect time."""
    async with make_fetch_client(allow_private=False, limits=LIMITS, resolver=fake_dns) as client:
        yield client


async def fetch(
    source: str,
    client: httpx.AsyncClient,
    *,
    allow_private: bool = True,
    limits: FetchLimits = LIMITS,
    kind: str = "image",
) -> bytes:
    return await load_media(
        source,
        field=FIELD,
        kind="image" if kind == "image" else "video",
        limits=limits,
        client=client,
        allow_private=allow_private,
    )


async def refusal(source: str, client: httpx.AsyncClient, **kwargs: object) -> MediaError:
    """The MediaError of a refused source: a rule of the caller's input starts with the field, a fetch that failed
    says "could not fetch <field> from <host>: <reason>"."""
    with pytest.raises(MediaError) as caught:
        await fetch(source, client, **kwargs)  # type: ignore[arg-type]
    message = caught.value.message
    assert caught.value.param == FIELD and message.startswith((FIELD + " ", f"could not fetch {FIELD} from "))
    return caught.value


def fetch_failure(host: str, reason: str) -> str:
    return f"could not fetch {FIELD} from {host}: {reason}"


def test_is_url() -> None:
    assert is_url("https://x") and is_url("HTTP://x") and not is_url("data:image/png;base64,AAAA")
    assert not is_url("ftp://x") and not is_url("aHR0cDovL2V4YW1wbGU=")


async def test_fetches_jpeg_and_png(server: MediaServer, loopback: httpx.AsyncClient) -> None:
    photo, drawing = mediagen.jpeg(640, 480), mediagen.png(400, 400, scene=3)
    server.serve("/a.jpg", photo, "image/jpeg")
    server.serve("/b.png", drawing, "image/png")
    assert await fetch(server.url("/a.jpg"), loopback) == photo
    assert await fetch(server.url("/b.png", host="media.test"), loopback) == drawing
    assert inspect_image(photo, field=FIELD, max_bytes=LIMITS.max_bytes).format == "jpeg"
    assert server.seen[0].headers["User-Agent"].startswith("reelgate/")
    assert server.seen[0].headers["Accept-Encoding"] == "identity"


async def test_data_uri_and_bare_base64(loopback: httpx.AsyncClient) -> None:
    photo = mediagen.jpeg(320, 320)
    encoded = base64.b64encode(photo).decode()
    assert await fetch("data:image/jpeg;base64," + encoded, loopback) == photo
    assert await fetch("DATA:image/png;name=a.png;base64," + encoded, loopback) == photo
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert await fetch("  " + wrapped + "\n", loopback) == photo
    assert decode_inline(base64.urlsafe_b64encode(photo).decode().rstrip("="), field=FIELD, max_bytes=10**6) == photo


@pytest.mark.parametrize(
    "source",
    [
        "not base64!",
        "data:text/plain;base64,aGVsbG8=",
        "data:image/png,rawbytes",
        "QUJD=E",
        "A",
        "",
        "file:///etc/passwd",
    ],
)
async def test_bad_inline_data_is_refused(source: str, loopback: httpx.AsyncClient) -> None:
    error = await refusal(source, loopback)
    assert error.code == "image_processing_error"


def test_inline_data_over_the_cap_is_refused_before_decoding() -> None:
    with pytest.raises(MediaError, match="larger than 1000 bytes") as caught:
        decode_inline("A" * 4000, field=FIELD, max_bytes=1000)
    assert caught.value.code == "image_processing_error"
    with pytest.raises(MediaError, match="larger than"):
        decode_inline(base64.b64encode(b"x" * 1001).decode(), field=FIELD, max_bytes=1000)


@pytest.mark.parametrize(
    ("status", "kind", "code", "shown"),
    [(404, "image", "image_processing_error", "404 Not Found"), (500, "video", "invalid_parameters",
     "500 Internal Server Error"), (403, "image", "image_processing_error", "403 Forbidden"),
     (599, "image", "image_processing_error", "599")],
)  # fmt: skip
async def test_http_errors_name_the_field_host_and_status(
    server: MediaServer, loopback: httpx.AsyncClient, status: int, kind: str, code: str, shown: str
) -> None:
    server.status("/missing", status, body=b"<html>the server's own words stay out</html>")
    error = await refusal(server.url("/missing"), loopback, kind=kind)
    assert error.code == code
    assert error.message == fetch_failure(f"127.0.0.1:{server.port}", f"the server answered HTTP {shown}")


async def test_follows_a_redirect_chain(server: MediaServer, loopback: httpx.AsyncClient) -> None:
    photo = mediagen.jpeg(400, 400)
    server.redirect("/r1", "/r2", status=301)
    server.redirect("/r2", server.url("/r3", host="media.test"), status=307)
    server.redirect("/r3", "a.jpg", status=308)
    server.serve("/a.jpg", photo, "image/jpeg")
    assert await fetch(server.url("/r1"), loopback) == photo
    assert [seen.path for seen in server.seen] == ["/r1", "/r2", "/r3", "/a.jpg"]


async def test_too_many_redirects(server: MediaServer, loopback: httpx.AsyncClient) -> None:
    server.redirect("/loop", "/loop")
    error = await refusal(server.url("/loop"), loopback)
    assert error.message == fetch_failure(f"127.0.0.1:{server.port}", "it redirected more than 3 times")
    assert len(server.seen) == LIMITS.max_redirects + 1


@pytest.mark.parametrize(
    "target", ["http://127.0.0.1:{port}/secret", "http://169.254.169.254/latest", "file:///etc/passwd"]
)
async def test_redirect_to_a_refused_url_is_not_followed(
    server: MediaServer, loopback: httpx.AsyncClient, target: str
) -> None:
    """The first hop is a public-looking name (the client may reach loopback, the rules may not)."""
    server.redirect("/r", target.format(port=server.port))
    error = await refusal(server.url("/r", host="media.test"), loopback, allow_private=False)
    assert error.message.startswith(fetch_failure(f"media.test:{server.port}", "a redirect was refused (its target "))
    assert "127.0.0.1" not in error.message and "169.254" not in error.message  # the server's target stays private
    assert [seen.path for seen in server.seen] == ["/r"]


async def test_private_url_is_refused_before_any_request(server: MediaServer, guarded: httpx.AsyncClient) -> None:
    server.serve("/a.jpg", b"x", "image/jpeg")
    for url in (server.url("/a.jpg"), f"http://0x7f000001:{server.port}/a.jpg", f"http://localhost:{server.port}/"):
        error = await refusal(url, guarded, allow_private=False)
        assert error.code == "image_processing_error" and "must not point to" in error.message
    assert server.seen == []


async def test_host_resolving_to_private_is_refused_without_leaking_it(
    server: MediaServer, guarded: httpx.AsyncClient
) -> None:
    server.serve("/a.jpg", b"x", "image/jpeg")
    error = await refusal(server.url("/a.jpg", host="media.test"), guarded, allow_private=False)
    assert error.message == fetch_failure(f"media.test:{server.port}", "it resolves to a non-public address")
    assert "127.0.0.1" not in error.message
    assert server.seen == []


async def test_declared_length_over_the_cap_is_refused_before_reading(
    server: MediaServer, loopback: httpx.AsyncClient
) -> None:
    # The body is short: reading it would end in "connection broke"; the header alone decides.
    server.lie_about_length("/big.jpg", b"x" * 100, declared=LIMITS.max_bytes + 1)
    error = await refusal(server.url("/big.jpg"), loopback)
    assert error.message == fetch_failure(f"127.0.0.1:{server.port}", "the file is larger than 1000000 bytes")


async def test_streamed_body_over_the_cap_is_cut(server: MediaServer, loopback: httpx.AsyncClient) -> None:
    server.endless("/endless.jpg")
    error = await refusal(server.url("/endless.jpg"), loopback)
    assert error.message == fetch_failure(f"127.0.0.1:{server.port}", "the file is larger than 1000000 bytes")


async def test_body_shorter_than_declared(server: MediaServer, loopback: httpx.AsyncClient) -> None:
    server.lie_about_length("/short.jpg", b"x" * 100, declared=5000)
    error = await refusal(server.url("/short.jpg"), loopback)
    assert error.message == fetch_failure(
        f"127.0.0.1:{server.port}", "the connection broke before the whole file arrived"
    )


async def test_server_that_never_answers_hits_the_read_timeout(
    server: MediaServer, loopback: httpx.AsyncClient
) -> None:
    server.stall("/stall")
    limits = FetchLimits(max_bytes=1000, read_timeout=0.3, total_timeout=5)
    started = time.monotonic()
    error = await refusal(server.url("/stall"), loopback, limits=limits)
    assert error.message == fetch_failure(f"127.0.0.1:{server.port}", "the server sent nothing for 0.3 s")
    assert time.monotonic() - started < 2


async def test_trickling_server_is_cut_by_the_total_budget(server: MediaServer, loopback: httpx.AsyncClient) -> None:
    server.trickle("/slow.jpg", interval=0.02)  # each byte arrives well within the read timeout
    limits = FetchLimits(max_bytes=10**6, read_timeout=0.5, total_timeout=0.6)
    started = time.monotonic()
    error = await refusal(server.url("/slow.jpg"), loopback, limits=limits)
    assert error.message == fetch_failure(f"127.0.0.1:{server.port}", "the download did not finish within 0.6 s")
    assert time.monotonic() - started < 1.5


async def test_encoded_body_is_refused(server: MediaServer, loopback: httpx.AsyncClient) -> None:
    server.serve("/a.jpg", b"\x1f\x8b" + b"\x00" * 20, "image/jpeg", **{"Content-Encoding": "gzip"})
    error = await refusal(server.url("/a.jpg"), loopback)
    assert error.message == fetch_failure(
        f"127.0.0.1:{server.port}", "the server sent a compressed (Content-Encoding) body"
    )


async def test_connection_refused(loopback: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await refusal(f"http://127.0.0.1:{port}/a.jpg", loopback)
    assert error.message == fetch_failure(f"127.0.0.1:{port}", "connection refused")


async def test_url_rules_apply_to_the_callers_url(loopback: httpx.AsyncClient) -> None:
    error = await refusal("https://example.com/" + "a" * 2048, loopback)
    assert error.message == f"{FIELD} must be at most 2048 characters"
    error = await refusal("http://user:pw@example.com/a.jpg", loopback, allow_private=False)
    assert "user credentials" in error.message


async def test_video_url_is_fetched_with_its_code(server: MediaServer, loopback: httpx.AsyncClient) -> None:
    server.serve("/v.mp4", b"\x00\x00\x00\x18ftypisom", "video/mp4")
    assert await fetch(server.url("/v.mp4"), loopback, kind="video") == b"\x00\x00\x00\x18ftypisom"
    assert server.seen[0].headers["Accept"] == "video/*"


async def test_host_resolving_to_nothing() -> None:
    async def empty(host: str, port: int) -> list[str]:
        return []

    async with make_fetch_client(allow_private=False, limits=LIMITS, resolver=empty) as client:
        error = await refusal("http://void.test/a.jpg", client, allow_private=False)
    assert error.message == fetch_failure("void.test", "its host name resolves to no address")
