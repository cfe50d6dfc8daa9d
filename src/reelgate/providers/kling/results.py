"""Result videos: stream one from Kling's (expiring) URL into Reelgate's storage, bounded in size and time.

The body goes chunk by chunk from the socket into ``AssetStore.save_stream``, so a worker never holds a video whole
in memory. Every hop is checked by netguard (the URL comes from an upstream answer, not from us), redirects are
followed by hand with the same checks, and the first bytes must be an MP4/MOV file. The stored result expires after
the deployment's result retention (REELGATE_RESULT_RETENTION_DAYS), which its name carries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from reelgate.assets import AssetStore, ObjectTooLarge
from reelgate.netguard import BlockedAddress, url_problem

MAX_REDIRECTS = 5
BLOCK = 1 << 20  # bytes handed to storage at a time: bounded memory, few thread hops
_SCHEMES = ("http", "https")


class DownloadFailed(Exception):
    """This attempt failed; another may succeed (a 404 of a link not yet live, a dropped connection)."""


class ResultTooLarge(Exception):
    """The video is larger than the configured cap: another attempt would fail the same way."""


async def _checked_mp4(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The body in blocks of about ``BLOCK`` bytes, once its first 12 bytes show an ISO media file (``ftyp`` box).

    Blocks, not the socket's small reads: each block is one write on the storage backend's thread, and a hop to a
    thread per 64 KiB read made the ingest of a 200 MB result 2.7x the time of a plain copy.
    """
    block = bytearray()
    checked = False
    async for chunk in chunks:
        block += chunk
        if not checked:
            if len(block) < 12:
                continue
            if block[4:8] != b"ftyp":
                raise DownloadFailed("the result is not an MP4/MOV file")
            checked = True
        if len(block) >= BLOCK:
            yield bytes(block)
            block.clear()
    if not checked:
        raise DownloadFailed("the result is empty or truncated")
    if block:
        yield bytes(block)


async def _open(client: httpx.AsyncClient, url: str, allow_private: bool) -> httpx.Response:
    """The 200 answer for ``url`` (redirects followed and checked), not yet read."""
    for _ in range(MAX_REDIRECTS + 1):
        problem = url_problem(url, allow_private=allow_private, schemes=_SCHEMES)
        if problem is not None:
            raise DownloadFailed(f"the result URL {problem}")
        request = client.build_request("GET", url, headers={"Accept": "video/*", "Accept-Encoding": "identity"})
        response = await client.send(request, stream=True)
        if not response.is_redirect:
            if response.status_code != 200:
                await response.aclose()
                raise DownloadFailed(f"HTTP {response.status_code}")
            return response
        location = response.headers.get("location", "")
        await response.aclose()
        try:
            url = str(httpx.URL(url).join(location))
        except httpx.InvalidURL:
            raise DownloadFailed("a redirect to an invalid URL") from None
    raise DownloadFailed(f"more than {MAX_REDIRECTS} redirects")


async def store_result(client: httpx.AsyncClient, url: str, assets: AssetStore, *, account_id: int, task_id: str,
                       max_bytes: int, total_timeout: float, allow_private: bool) -> tuple[str, int]:  # fmt: skip
    """Stream the video at ``url`` into storage as ``<token>-e<expires>.mp4`` registered to the task, expiring after
    the result retention; its name and size."""
    try:
        async with asyncio.timeout(total_timeout):
            response = await _open(client, url, allow_private)
            try:
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise DownloadFailed("a compressed (Content-Encoding) body")
                declared = response.headers.get("content-length", "")
                if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
                    raise ResultTooLarge(f"the result declares {declared} bytes")
                chunks = _checked_mp4(response.aiter_raw())
                # A result is served for the retention the deployment sets, counted from now; its name says until
                # when, so /assets answers 410 after that without a lookup (docs/uploads.md).
                return await assets.save_stream(chunks, "mp4", account_id=account_id, task_id=task_id,
                                                max_bytes=max_bytes, expires_at=assets.result_expiry())  # fmt: skip
            finally:
                await response.aclose()
    except ObjectTooLarge as exc:
        raise ResultTooLarge(str(exc)) from None
    except TimeoutError:
        raise DownloadFailed(f"not done within {total_timeout:g} s") from None
    except BlockedAddress:
        raise DownloadFailed("the result host is a private, loopback or reserved address") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise DownloadFailed(f"the connection failed ({type(exc).__name__})") from None
