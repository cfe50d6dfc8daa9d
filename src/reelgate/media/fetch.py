"""Read reference media from Base64 or from a URL: bounded in size and time, every hop checked by netguard.

A URL that cannot be fetched fails naming the field, the host and the reason in words safe for a tenant
(media/failures.py); the operator's log gets the whole story. A fetch that is cancelled hands its connection back
to the client's pool before the cancellation reaches its caller (``_apart``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Literal

import anyio
import httpx

from reelgate import __version__
from reelgate.errors import MEDIA_ERROR_CODES, MediaError
from reelgate.media import failures
from reelgate.media.images import size_text
from reelgate.netguard import BlockedAddress, Resolver, guarded_transport, url_problem
from reelgate.params import is_url

MediaKind = Literal["image", "video"]
log = logging.getLogger("reelgate.media")

_SCHEMES = ("http", "https")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_BASE64_URLSAFE = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_DATA_URI = re.compile(r"data:(?P<type>(?:image|video)/[a-z0-9.+-]+)(?:;[^,;]*)*;base64,", re.IGNORECASE)


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    connect_timeout: float = 5
    read_timeout: float = 15
    total_timeout: float = 60
    max_redirects: int = 5


def decode_inline(source: str, *, field: str, max_bytes: int, code: str = "image_processing_error") -> bytes:
    """Bytes of a ``data:image|video/...;base64,`` URI or of bare Base64 (whitespace tolerated)."""
    payload = source
    if source[:5].lower() == "data:":
        match = _DATA_URI.match(source)
        if match is None:
            raise MediaError(code, f"{field} must be a data:image/...;base64, URI or bare Base64", param=field)
        payload = source[match.end() :]
    text = "".join(payload.split())
    # Decoded size is 3/4 of the text: refuse an oversized item before allocating its bytes.
    if len(text) // 4 * 3 > max_bytes + 2:
        raise MediaError(code, f"{field} is larger than {size_text(max_bytes)}", param=field)
    data = _b64decode(text)
    if data is None:
        raise MediaError(code, f"{field} is not valid Base64 data", param=field)
    if len(data) > max_bytes:
        raise MediaError(code, f"{field} is larger than {size_text(max_bytes)}", param=field)
    return data


def _b64decode(text: str) -> bytes | None:
    if not text or len(text) % 4 == 1:
        return None
    padded = text + "=" * (-len(text) % 4) if "=" not in text else text
    try:
        if _BASE64.fullmatch(padded):
            return base64.b64decode(padded, validate=True)
        if _BASE64_URLSAFE.fullmatch(padded):
            return base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        return None
    return None


def make_fetch_client(
    *,
    allow_private: bool,
    limits: FetchLimits,
    resolver: Resolver | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    """A client whose every connection goes through netguard; redirects are left to ``load_media``."""
    transport = guarded_transport(
        allow_private=allow_private, resolver=resolver, verify=verify, connect_timeout=limits.connect_timeout
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        timeout=_timeout(limits),
        headers={"User-Agent": f"reelgate/{__version__}"},
        # Environment proxies would connect on our behalf and bypass the address pinning.
        trust_env=False,
    )


def _timeout(limits: FetchLimits) -> httpx.Timeout:
    return httpx.Timeout(
        connect=limits.connect_timeout,
        read=limits.read_timeout,
        write=limits.read_timeout,
        pool=limits.connect_timeout,
    )


class _Failed(Exception):
    """Internal: why a fetch failed, in a tenant's words, and what the operator's log adds."""

    def __init__(self, reason: str, *, error: BaseException | None = None, **log: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.log = log


async def load_media(
    source: str,
    *,
    field: str,
    kind: MediaKind,
    limits: FetchLimits,
    client: httpx.AsyncClient,
    allow_private: bool,
    task_id: str | None = None,
) -> bytes:
    """The bytes of ``source`` (Base64 or http(s) URL); every failure is a MediaError naming ``field``.

    A fetch that fails says "could not fetch <field> from <host>: <reason>" and logs the full detail (on the
    ``reelgate.media`` logger, with ``task_id`` when given).
    """
    code = MEDIA_ERROR_CODES[kind]
    if not is_url(source):
        return decode_inline(source, field=field, max_bytes=limits.max_bytes, code=code)
    problem = url_problem(source, allow_private=allow_private, schemes=_SCHEMES)
    if problem is not None:
        raise MediaError(code, f"{field} {problem}", param=field)
    visited = [source]  # the caller's URL, then every redirect target followed
    try:
        return await _apart(partial(_follow, visited, kind, limits, client, allow_private), limits)
    except TimeoutError:
        failed = _Failed(f"the download did not finish within {limits.total_timeout:g} s")
    except _Failed as exc:
        failed = exc
    message = f"could not fetch {field} from {_where(source, visited[-1])}: {failed.reason}"
    _log_failure(failed, field=field, url=visited[-1], hops=len(visited) - 1, task_id=task_id)
    raise MediaError(code, message, param=field)


async def _apart(fetch: Callable[[], Awaitable[bytes]], limits: FetchLimits) -> bytes:
    """``fetch()`` in a task of its own under the total deadline; the caller's cancellation reaches it as an anyio
    cancel, and propagates once the fetch has let go of its connection.

    httpcore (1.0.9, the latest) tidies a cancelled request up (its response stream, its place in the pool) inside
    anyio shields, and a native ``Task.cancel()`` (a cancelled task, a TaskGroup cancelling an item's siblings,
    ``asyncio.timeout``) goes straight through them: cancelled at the wrong moment, a request leaves its connection
    ACTIVE or NEW in the pool for good, an open socket and a lost pool place each time (encode/httpcore#1093, #830).
    An anyio cancel scope honours those shields, so this fetch is only ever cancelled through one.
    """
    scope = anyio.CancelScope(deadline=anyio.current_time() + limits.total_timeout)

    async def run() -> bytes:
        with scope:
            return await fetch()
        raise TimeoutError  # the scope swallowed its own cancel: the deadline passed (or the caller gave up)

    task = asyncio.create_task(run())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Takes effect at the fetch's next await (at once while connecting or reading), but never inside httpcore's
        # shielded clean-up, which is local work (closing a socket, updating the pool).
        scope.cancel()
        await _settle(task, limits.read_timeout)
        raise


async def _settle(task: asyncio.Task[bytes], bound: float) -> None:
    """Wait, up to ``bound`` seconds and through repeated cancels, for a cancelled fetch to finish tidying up.

    Only a courtesy to the caller (its connection is back in the pool when its CancelledError arrives): the fetch
    tidies up in its own task whether or not anyone waits, and ``asyncio.shield`` retrieves its outcome.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while not task.done() and (left := deadline - loop.time()) > 0:
        try:
            await asyncio.wait([task], timeout=left)
        except asyncio.CancelledError:
            continue  # cancelled again (a TaskGroup and a lost lease at once): the caller's CancelledError follows


def _host(url: str) -> str:
    """The host (and a port that is not the scheme's default) of an http(s) URL, for a message."""
    parsed = httpx.URL(url)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return host if parsed.port is None else f"{host}:{parsed.port}"


def _where(source: str, last: str) -> str:
    first, failed = _host(source), _host(last)
    return first if failed == first else f"{failed} (redirected from {first})"


def _log_failure(failed: _Failed, *, field: str, url: str, hops: int, task_id: str | None) -> None:
    extra: dict[str, object] = {"task_id": task_id, "field": field, "host": _host(url), "redirects": hops,
                                # The query often carries a signature or token: the operator needs where, not that.
                                "url": str(httpx.URL(url).copy_with(query=None, fragment=None)),
                                "reason": failed.reason, **failed.log}  # fmt: skip
    if failed.error is not None:
        extra |= {"error": failures.detail(failed.error), "error_class": type(failed.error).__name__,
                  "addresses": failures.addresses(failed.error)}  # fmt: skip
    log.warning("media fetch failed", extra=extra)


async def _follow(
    visited: list[str], kind: MediaKind, limits: FetchLimits, client: httpx.AsyncClient, allow_private: bool
) -> bytes:
    for _ in range(limits.max_redirects + 1):
        url = visited[-1]
        location = await _get(url, kind, limits, client)
        if isinstance(location, bytes):
            return location
        # Resolve relative to the current URL, then hold the target to the same rules as the caller's URL.
        try:
            target = str(httpx.URL(url).join(location))
        except httpx.InvalidURL:
            raise _Failed("it redirected to an invalid URL", location=location[:300]) from None
        problem = url_problem(target, allow_private=allow_private, schemes=_SCHEMES)
        if problem is not None:
            # The target came from the server, not the caller: say why, but not where (the log has it).
            raise _Failed(f"a redirect was refused (its target {problem})", location=target[:300])
        visited.append(target)
    raise _Failed(f"it redirected more than {limits.max_redirects} times")


async def _get(url: str, kind: MediaKind, limits: FetchLimits, client: httpx.AsyncClient) -> bytes | str:
    """The body of a 2xx answer, or the Location of a redirect."""
    headers = {"Accept": f"{kind}/*", "Accept-Encoding": "identity"}
    try:
        async with client.stream("GET", url, headers=headers, timeout=_timeout(limits)) as response:
            peer = _peer(response)
            if response.is_redirect:
                return response.headers["location"]
            if not response.is_success:
                raise _Failed(f"the server answered HTTP {_status(response.status_code)}",
                              status_code=response.status_code, peer=peer)  # fmt: skip
            content_type = response.headers.get("content-type", "")
            problem = content_type_problem(content_type, kind)
            if problem is not None:
                raise _Failed(problem, content_type=content_type[:200], peer=peer)
            return await _read_body(response, limits.max_bytes, peer)
    except (httpx.HTTPError, httpx.InvalidURL, BlockedAddress) as exc:
        reason = failures.connection_reason(exc, connect_timeout=limits.connect_timeout,
                                            read_timeout=limits.read_timeout)  # fmt: skip
        raise _Failed(reason, error=exc) from None


def _peer(response: httpx.Response) -> str | None:
    """The address the answer came from (the operator's log only)."""
    stream = response.extensions.get("network_stream")
    address = stream.get_extra_info("server_addr") if stream is not None else None
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) and len(address) >= 2 else None


def _status(code: int) -> str:
    """``404 Not Found``: the standard phrase, never the server's own text (which could say anything)."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


# Media types that say "this is a document, not a media file" (an HTML error or login page, a JSON error).
_DOCUMENT_TOPS = frozenset({"text", "audio", "font", "model", "multipart", "message"})
_DOCUMENT_TYPES = frozenset({"application/json", "application/xml", "application/xhtml+xml",
                             "application/javascript", "application/pdf", "application/problem+json"})  # fmt: skip
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
_KIND_NAME = {"image": "an image", "video": "a video"}


def content_type_problem(content_type: str, kind: MediaKind) -> str | None:
    """Why a declared Content-Type rules the body out, or None when the content must decide.

    Refused: a document type (text/html, application/json, ...) or the other kind of media (an image where a video
    is wanted). Anything else (none, application/octet-stream, binary/octet-stream, an unknown type) is judged by
    its content, as the rules say: many servers send a generic type for every file.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not _MEDIA_TYPE.fullmatch(media_type):
        return None
    top, _, sub = media_type.partition("/")
    other_kind = top in ("image", "video") and top != kind
    document = top in _DOCUMENT_TOPS or media_type in _DOCUMENT_TYPES or sub.endswith(("+json", "+xml"))
    if top == kind or not (other_kind or document):
        return None
    return f"the server sent {media_type}, not {_KIND_NAME[kind]}"


async def _read_body(response: httpx.Response, max_bytes: int, peer: str | None) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Decompressing would let a small answer expand without bound; media files are compressed already.
        raise _Failed("the server sent a compressed (Content-Encoding) body", content_encoding=encoding[:100],
                      peer=peer)  # fmt: skip
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise _Failed(f"the file is larger than {size_text(max_bytes)}", content_length=declared[:30], peer=peer)
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            raise _Failed(f"the file is larger than {size_text(max_bytes)}", peer=peer)
    return bytes(body)
