"""File API use cases (docs/files.md): upload by Base64, URL or stream, list, delete, quota, open for serving, sweep.

An upload goes: a place for the account in this process (at most ``uploads_per_account`` at once, as Base64 submits)
and a quota check, both before the body is read; the image identified from its header (JPEG, PNG, GIF or WebP by
content); a row reserved against the quota; the object written (a stream in bounded memory, cut at the size limit);
the row made ready. Any failure after the reservation removes the object and the row. Base64 bodies are decoded in
the media pool's processes, fair across accounts as for submits; URL uploads go through the SSRF-guarded fetch of
media inputs. A file's URL is ``<base>/files/<name>`` (media/hosted.py), read by whoever holds it until the file
expires or is deleted; a generation request of the same account may name it, and reads it from storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import replace
from typing import Any, Protocol

import httpx

from reelgate.assets import CappedStream, ObjectTooLarge
from reelgate.config import Settings
from reelgate.errors import InvalidRequest, MediaError, RateLimited, ServiceUnavailable
from reelgate.media.fetch import FetchLimits, load_media, make_fetch_client
from reelgate.media.hosted import hosted_url, iso_time, new_hosted_name, parse_hosted_name, read_hosted
from reelgate.media.image_type import HEADER_BYTES, ImageType, identify_image
from reelgate.media.pool import MediaPool
from reelgate.media.uploads import (
    DEFAULT_UPLOAD_PATH,
    Naming,
    check_file_name,
    decode_base64_body,
    naming_from,
    original_name_of_url,
    too_large,
)
from reelgate.params import MAX_URL_LENGTH, is_url
from reelgate.storage import ObjectReader, Storage
from reelgate.store.accounts import KeyOwner
from reelgate.store.files import FileRecord, FileStore

log = logging.getLogger("reelgate.files")
FILE_ID_PREFIX = "file_"
UNREADY_GRACE = 3600.0  # a row whose upload has not finished by then died with its process: it is swept
SMALL_BODY = 64 * 1024  # smaller Base64 bodies are decoded on a thread; larger ones in the media pool
MAX_PAGE_SIZE = 100


class StreamedFile(Protocol):
    """The file part of a multipart upload as it arrives (api/multipart.py)."""

    @property
    def filename(self) -> str | None: ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes; once exhausted, the rest of the form has been read too."""
        ...

    def fields(self) -> dict[str, str]:
        """The form's text fields (complete once ``chunks`` is exhausted)."""
        ...


def is_file_id(value: str) -> bool:
    tail = value.removeprefix(FILE_ID_PREFIX)
    return value.startswith(FILE_ID_PREFIX) and len(tail) == 24 and all(c in "0123456789abcdef" for c in tail)


def file_data(record: FileRecord, base_url: str) -> dict[str, Any]:
    """One file as the vendor's ``FileData`` shows it."""
    url = hosted_url(base_url, record.name)
    return {"file_id": record.id, "file_name": record.file_name, "original_name": record.original_name,
            "file_size": record.size, "mime_type": record.mime_type, "upload_path": record.upload_path,
            "file_url": url, "download_url": f"{url}?download=1", "upload_time": iso_time(record.created),
            "expires_at": iso_time(record.expires_at)}  # fmt: skip


class FileService:
    """Everything the file API may do, for one API process (its upload places are this process's)."""

    def __init__(self, settings: Settings, files: FileStore, storage: Storage, media: MediaPool,
                 fetch: httpx.AsyncClient | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.files = files
        self.storage = storage
        self.media = media
        self.max_bytes = settings.image_max_bytes
        self._limits = FetchLimits(max_bytes=self.max_bytes, connect_timeout=settings.fetch_connect_timeout,
                                   read_timeout=settings.fetch_read_timeout,
                                   total_timeout=settings.fetch_total_timeout)  # fmt: skip
        self._fetch = fetch or make_fetch_client(allow_private=settings.allow_private_networks, limits=self._limits)
        self._uploading: dict[int, int] = {}

    @property
    def base64_body_limit(self) -> int:
        # 4/3 of the file, with room for line breaks in the Base64 text and the other fields.
        return self.max_bytes * 3 // 2 + 64 * 1024

    # --- uploads ------------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def uploading(self, owner: KeyOwner) -> AsyncIterator[None]:
        """A place for one upload of the account, after its quota is checked: both before the body is read."""
        account = owner.account_id
        if self._uploading.get(account, 0) >= self.settings.uploads_per_account:
            raise RateLimited(f"this account already has {self.settings.uploads_per_account} uploads in progress; "
                              "send the next when one is answered", code="too_many_concurrent_uploads",
                              headers={"Retry-After": "1"})  # fmt: skip
        self._uploading[account] = self._uploading.get(account, 0) + 1
        try:
            now = time.time()
            if (await self.files.quota(account, now)).used >= self.settings.file_quota:
                raise await self._quota_full(account, now)
            yield
        finally:
            self._uploading[account] -= 1
            if not self._uploading[account]:
                del self._uploading[account]

    async def upload_base64(self, owner: KeyOwner, raw: bytes) -> FileRecord:
        with _as_request_error():
            if len(raw) <= SMALL_BODY:
                decoded = await asyncio.to_thread(decode_base64_body, raw, self.max_bytes)
            else:  # 14 MB of JSON and Base64 to decode: off this process, fair across accounts
                decoded = await self.media.run(owner.account_id, decode_base64_body, self.max_bytes, payload=raw)
        return await self._store_bytes(owner, decoded.data, decoded.image, decoded.naming, decoded.naming.file_name)

    async def upload_url(self, owner: KeyOwner, body: dict[str, Any]) -> FileRecord:
        naming = naming_from(body)
        url = body.get("file_url")
        if url is None:
            raise InvalidRequest("file_url is required", param="file_url", code="missing_parameter")
        if not isinstance(url, str) or not is_url(url.strip()) or len(url.strip()) > MAX_URL_LENGTH:
            raise InvalidRequest(f"file_url must be an http(s) URL of at most {MAX_URL_LENGTH} characters",
                                 param="file_url")  # fmt: skip
        url = url.strip()
        with _as_request_error():
            # A copy of one of the account's own files comes from storage, like any use of a file URL.
            data = await read_hosted(self.storage, url, field="file_url", kind="image", account_id=owner.account_id,
                                     max_bytes=self.max_bytes)  # fmt: skip
            if data is None:
                data = await load_media(url, field="file_url", kind="image", limits=self._limits, client=self._fetch,
                                        allow_private=self.settings.allow_private_networks)  # fmt: skip
            image = identify_image(data[:HEADER_BYTES], field="file_url")
        return await self._store_bytes(owner, data, image, naming, original_name_of_url(url))

    async def upload_stream(self, owner: KeyOwner, upload: StreamedFile) -> FileRecord:
        """Store the streamed file: its header checked first, then the rest written as it arrives (bounded memory)."""
        chunks = upload.chunks()
        head = await _read_head(chunks, HEADER_BYTES)
        if len(head) > self.max_bytes:
            raise too_large("file", self.max_bytes)
        with _as_request_error():
            image = await asyncio.to_thread(identify_image, head[:HEADER_BYTES], field="file")
        record = await self._reserve(owner, image, Naming(), _original(upload.filename))
        try:
            size = await self._put(record.name, _chain(head, chunks))
            naming = naming_from(upload.fields())
        except BaseException:
            await self._discard(record)
            raise
        return await self._ready(_named(replace(record, size=size), naming))

    async def _store_bytes(self, owner: KeyOwner, data: bytes, image: ImageType, naming: Naming,
                           original: str | None) -> FileRecord:  # fmt: skip
        record = _named(await self._reserve(owner, image, naming, original), naming)
        try:
            await self.storage.put(record.name, data)
        except BaseException:
            await self._discard(record)
            raise
        return await self._ready(replace(record, size=len(data)))

    async def _reserve(self, owner: KeyOwner, image: ImageType, naming: Naming, original: str | None) -> FileRecord:
        """A row for the file, counted against the quota (429 when it is full), before its object is written."""
        now = time.time()
        expires = math.ceil(now + self.settings.file_retention_hours * 3600)
        file_id = FILE_ID_PREFIX + secrets.token_hex(12)
        file_name = naming.file_name or f"{file_id}.{image.ext}"
        record = FileRecord(id=file_id, account_id=owner.account_id,
                            name=new_hosted_name(owner.account_id, expires, image.ext), file_name=file_name,
                            original_name=original or file_name, upload_path=naming.upload_path or DEFAULT_UPLOAD_PATH,
                            mime_type=image.mime_type, size=0, created=now, expires_at=float(expires))  # fmt: skip
        if not await self.files.reserve(record, quota=self.settings.file_quota, now=now, grace=UNREADY_GRACE):
            raise await self._quota_full(owner.account_id, now)
        return record

    async def _put(self, name: str, chunks: AsyncIterable[bytes]) -> int:
        """Write a stream as one object, cut at the size limit (413, nothing kept); its size."""
        counted = CappedStream(chunks, self.max_bytes, "file")
        try:
            await self.storage.put(name, counted)
        except ObjectTooLarge:
            raise too_large("file", self.max_bytes) from None
        return counted.total

    async def _ready(self, record: FileRecord) -> FileRecord:
        if not await self.files.mark_ready(record):
            await self.storage.delete([record.name])  # its row was swept meanwhile: the upload took over an hour
            raise ServiceUnavailable("the upload took too long and was discarded; send it again", code="upload_expired")
        return record

    async def _discard(self, record: FileRecord) -> None:
        try:
            await self.storage.delete([record.name])
            await self.files.remove(record.id)
        except Exception as exc:  # the sweep removes both once the row's grace period ends
            log.warning("could not discard a failed upload", extra={"file_id": record.id, "error": str(exc)})

    async def _quota_full(self, account_id: int, now: float) -> RateLimited:
        quota = await self.files.quota(account_id, now)
        wait = 3600 if quota.next_expiry is None else max(1, math.ceil(quota.next_expiry - now))
        return RateLimited(f"this account keeps {quota.used} files, its quota of {self.settings.file_quota}; delete "
                           "some (DELETE /api/v1/files/{file_id}) or wait until the oldest expires",
                           code="quota_exceeded", headers={"Retry-After": str(wait)})  # fmt: skip

    # --- reading and deleting -----------------------------------------------------------------------------------

    async def quota(self, owner: KeyOwner) -> dict[str, Any]:
        used = (await self.files.quota(owner.account_id, time.time())).used
        most = self.settings.file_quota
        return {"user_group": owner.user_group, "used_files": used, "max_files": most,
                "remain_files": max(0, most - used), "is_custom": False, "quota_reason": ""}  # fmt: skip

    async def page(self, owner: KeyOwner, page: int, page_size: int) -> tuple[list[FileRecord], int]:
        size = min(max(page_size, 1), MAX_PAGE_SIZE)
        return await self.files.page(owner.account_id, time.time(), offset=(max(page, 1) - 1) * size, limit=size)

    async def delete(self, owner: KeyOwner, file_id: str) -> FileRecord | None:
        """Delete the account's file (its object first, so a URL never outlives its row); None when there is none."""
        found = await self.files.get(file_id, owner.account_id, time.time()) if is_file_id(file_id) else None
        if found is None:
            return None
        await self.storage.delete([found.name])
        await self.files.remove(found.id, owner.account_id)
        return found

    async def open(self, name: str) -> tuple[FileRecord, ObjectReader] | None:
        """A live file by its stored name, opened for serving; None when it is unknown, expired or deleted."""
        hosted = parse_hosted_name(name)
        if hosted is None or hosted.expired(time.time()):
            return None  # a name that is no file's is never looked up, let alone read
        record = await self.files.by_name(name, time.time())
        reader = None if record is None else await self.storage.open(name)
        return None if record is None or reader is None else (record, reader)

    async def sweep(self, batch: int = 500) -> int:
        return await sweep_files(self.files, self.storage, batch)

    async def aclose(self) -> None:
        await self._fetch.aclose()


async def sweep_files(files: FileStore, storage: Storage, batch: int = 500) -> int:
    """Remove expired files (and uploads abandoned by a dead process), objects first, then their rows; how many.
    Idempotent, so every worker may run it (the worker's hourly sweep)."""
    removed = 0
    while found := await files.expired(time.time(), batch):
        await storage.delete([r.name for r in found])
        await files.forget([r.id for r in found])
        removed += len(found)
        if len(found) < batch:
            break
    return removed


@contextlib.contextmanager
def _as_request_error() -> Iterator[None]:
    """A media rule broken by the upload is the caller's error: 400 naming the field, with the rule's code."""
    try:
        yield
    except MediaError as exc:
        raise InvalidRequest(exc.message, code=exc.code, param=exc.param) from None


def _named(record: FileRecord, naming: Naming) -> FileRecord:
    file_name = naming.file_name or record.file_name
    original = record.original_name if record.original_name != record.file_name else file_name
    return replace(record, file_name=file_name, original_name=original,
                   upload_path=naming.upload_path or record.upload_path)  # fmt: skip


def _original(filename: str | None) -> str | None:
    """A multipart part's file name as a plain name (a browser may send a whole path), or None when unusable."""
    if not filename:
        return None
    base = filename.replace("\\", "/").rpartition("/")[2]
    try:
        return check_file_name(base)
    except InvalidRequest:
        return None


async def _read_head(chunks: AsyncIterator[bytes], size: int) -> bytes:
    """At least ``size`` bytes from the stream's start (or all of a shorter stream), for the header check."""
    head = bytearray()
    async for chunk in chunks:
        head += chunk
        if len(head) >= size:
            break
    return bytes(head)


async def _chain(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk
