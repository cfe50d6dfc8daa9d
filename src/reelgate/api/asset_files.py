"""Serving one stored media object: GET and HEAD, a single byte range, validators; every refusal is the contract's JSON.

Starlette's FileResponse answers a bad range with its own plain-text 416 (or 400), and a file deleted between the
route's check and the response with a plain 500; here the object is opened first through the storage interface (a
deleted element's media are then simply not found), the range is decided before anything is sent, and the open
object is streamed, whatever backend keeps it (a directory, or an S3 bucket through its ranged GETs). When the
backend offers short-lived URLs (S3 with REELGATE_S3_PRESIGN_SECONDS), a GET is redirected there instead, so the
bytes flow from the bucket and the URL handed out stays Reelgate's lasting one. A generated result's name says when
it expires: from then on it answers 410 Gone, decided from the name alone (the object may already be swept).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from email.utils import formatdate

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from reelgate.assets import DAY, AssetStore, expiry_of
from reelgate.errors import ApiError, NotFound, RangeNotSatisfiable, ServiceUnavailable
from reelgate.storage import ObjectReader, StorageUnavailable

log = logging.getLogger("reelgate.api")

CHUNK = 256 * 1024
# A name never changes its bytes (immutable: no revalidation while fresh), but it is revocable (an element's media
# go when it is deleted): no shared cache keeps a copy, a browser only briefly.
CACHE_CONTROL = "private, max-age=300, immutable"
# A presigned URL expires: a browser must come back here rather than reuse a redirect to a stale one.
REDIRECT_CACHE_CONTROL = "no-store"
# ASCII digits, at most 18 (any file size fits): \d takes other scripts' digits, and int() refuses 4,300+ digits.
_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "mp4": "video/mp4", "mov": "video/quicktime"}


class AssetExpired(ApiError):
    """410: the object's retention is over (an extension; the contract's type for a missing resource)."""

    status = 410
    type = "not_found_error"
    code = "asset_expired"


def _expired(name: str, assets: AssetStore) -> AssetExpired | None:
    expires = expiry_of(name)
    if expires is None or time.time() < expires:
        return None
    when = datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")
    return AssetExpired(f"this result expired at {when}: generated results are kept {assets.result_retention / DAY:g} "
                        "days after they are made; run the task again to make a new one")  # fmt: skip


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte a Range header asks for, or None for the whole file (RFC 9110 §14.2: a header
    that is not one valid bytes range is ignored); RangeNotSatisfiable when it starts beyond the end."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.groups() == ("", ""):
        return None  # absent, another unit, several ranges or not a range: the whole file (a server may ignore)
    first, last = match.groups()
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
        if int(last) == 0:
            raise _unsatisfiable(size)
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None  # invalid: ignored
        if start >= size:
            raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(f"the range starts beyond the end of the file ({size} bytes)", param="Range",
                               headers={"Content-Range": f"bytes */{size}"})  # fmt: skip


class StoredFile(Response):
    """An open object, streamed whole or as one range; the object is closed when the response ends."""

    def __init__(self, reader: ObjectReader, start: int, end: int, status: int, headers: dict[str, str]) -> None:
        self.reader, self.start, self.end = reader, start, end
        super().__init__(status_code=status, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if scope["method"] != "HEAD" and self.status_code != 304:
                async for chunk in self.reader.chunks(self.start, self.end, CHUNK):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self.reader.aclose()


async def asset_response(request: Request, assets: AssetStore, name: str) -> Response:
    """``GET``/``HEAD /assets/<name>``: a redirect to the backend's short-lived URL when it offers one (GET only: a
    presigned GET does not sign HEAD), else the object streamed; 404 ``asset_not_found`` when there is none, 410
    ``asset_expired`` once a result's retention is over."""
    if (gone := _expired(name, assets)) is not None:
        raise gone
    try:
        if request.method == "GET" and (url := await assets.signed_url(name)) is not None:
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": REDIRECT_CACHE_CONTROL})
        reader = await assets.open_public(name)
    except StorageUnavailable as exc:
        log.warning("stored media cannot be read", extra={"error": str(exc)})
        raise ServiceUnavailable("stored media cannot be read right now; retry shortly", code="storage_unavailable",
                                 headers={"Retry-After": "5"}) from None  # fmt: skip
    if reader is None:
        raise NotFound("no such stored file", code="asset_not_found")
    return await stored_file(request, name, reader)


async def stored_file(request: Request, name: str, reader: ObjectReader) -> StoredFile:
    """The response for the object ``name`` (checked) opened as ``reader``: 200, 206 or 304; 416 for a bad range."""
    try:
        size = reader.info.size
        stem, _, ext = name.partition(".")
        etag = f'"{stem}"'  # a name never changes its bytes, so the name is the validator
        modified = formatdate(reader.info.modified, usegmt=True)
        headers = {"Content-Type": MEDIA_TYPES.get(ext, "application/octet-stream"),
                   "Accept-Ranges": "bytes", "ETag": etag, "Last-Modified": modified,
                   "Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}  # fmt: skip
        if etag in request.headers.get("if-none-match", ""):
            return StoredFile(reader, 0, -1, 304, headers)
        if_range = request.headers.get("if-range")
        wanted = byte_range(request.headers.get("range"), size)
        if wanted is None or (if_range is not None and if_range not in (etag, headers["Last-Modified"])):
            return StoredFile(reader, 0, size - 1, 200, {**headers, "Content-Length": str(size)})
        start, end = wanted
        headers.update({"Content-Length": str(end - start + 1), "Content-Range": f"bytes {start}-{end}/{size}"})
        return StoredFile(reader, start, end, 206, headers)
    except BaseException:
        # The response never started, so nobody else will close the reader (a 416 is raised from here).
        await reader.aclose()
        raise
