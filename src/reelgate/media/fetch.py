"""Read reference media from Base64 or from a URL: bounded in size and time, every hop checked by netguard."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import ssl
from dataclasses import dataclass
from typing import Literal

import httpx

from reelgate import __version__
from reelgate.errors import MediaError
from reelgate.media.images import size_text
from reelgate.netguard import BlockedAddress, Resolver, guarded_transport, url_problem
from reelgate.params import is_url

MediaKind = Literal["image", "video"]

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
    """Internal: why a fetch failed, as a phrase to follow the field name."""


async def load_media(
    source: str,
    *,
    field: str,
    kind: MediaKind,
    limits: FetchLimits,
    client: httpx.AsyncClient,
    allow_private: bool,
) -> bytes:
    """The bytes of ``source`` (Base64 or http(s) URL); every failure is a MediaError naming ``field``."""
    code = "image_processing_error" if kind == "image" else "invalid_parameters"
    if not is_url(source):
        return decode_inline(source, field=field, max_bytes=limits.max_bytes, code=code)
    problem = url_problem(source, allow_private=allow_private, schemes=_SCHEMES)
    if problem is not None:
        raise MediaError(code, f"{field} {problem}", param=field)
    try:
        async with asyncio.timeout(limits.total_timeout):
            return await _follow(source, kind, limits, client, allow_private)
    except TimeoutError:
        message = f"could not be fetched within {limits.total_timeout:g} s"
    except _Failed as exc:
        message = str(exc)
    raise MediaError(code, f"{field} {message}", param=field)


async def _follow(
    url: str, kind: MediaKind, limits: FetchLimits, client: httpx.AsyncClient, allow_private: bool
) -> bytes:
    for _ in range(limits.max_redirects + 1):
        location = await _get(url, kind, limits, client)
        if isinstance(location, bytes):
            return location
        # Resolve relative to the current URL, then hold the target to the same rules as the caller's URL.
        try:
            url = str(httpx.URL(url).join(location))
        except httpx.InvalidURL:
            raise _Failed("could not be fetched: the server redirected to an invalid URL") from None
        problem = url_problem(url, allow_private=allow_private, schemes=_SCHEMES)
        if problem is not None:
            # The target came from the server, not the caller: say why, but not where.
            raise _Failed(f"could not be fetched: a redirect was refused (its target {problem})")
    raise _Failed(f"could not be fetched: more than {limits.max_redirects} redirects")


async def _get(url: str, kind: MediaKind, limits: FetchLimits, client: httpx.AsyncClient) -> bytes | str:
    """The body of a 2xx answer, or the Location of a redirect."""
    headers = {"Accept": f"{kind}/*", "Accept-Encoding": "identity"}
    try:
        async with client.stream("GET", url, headers=headers, timeout=_timeout(limits)) as response:
            if response.is_redirect:
                return response.headers["location"]
            if not response.is_success:
                raise _Failed(f"could not be fetched: HTTP {response.status_code}")
            return await _read_body(response, limits.max_bytes)
    except BlockedAddress as exc:
        # Name the rule, not the resolved address: that would tell the caller about our network.
        reason = "resolves to no address" if exc.address is None else "is a private, loopback or reserved address"
        raise _Failed(f"could not be fetched: its host {reason}") from None
    except httpx.TimeoutException:
        raise _Failed("could not be fetched: the server did not answer in time") from None
    except httpx.RemoteProtocolError:
        raise _Failed("could not be fetched: the connection broke before the whole file arrived") from None
    except (httpx.HTTPError, httpx.InvalidURL):
        # The details (addresses, errno text) describe our network, not the caller's input: keep them out.
        raise _Failed("could not be fetched: the connection failed") from None


async def _read_body(response: httpx.Response, max_bytes: int) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Decompressing would let a small answer expand without bound; media files are compressed already.
        raise _Failed("could not be fetched: the server sent a compressed (Content-Encoding) body")
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise _Failed(f"is larger than {size_text(max_bytes)}")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            raise _Failed(f"is larger than {size_text(max_bytes)}")
    return bytes(body)
