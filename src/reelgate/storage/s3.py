"""The S3-compatible backend (AWS S3, MinIO, R2, ...): one object per name under a key prefix, through aiobotocore.

Why aiobotocore: docs/benchmarks.md, "Object storage client". What "atomic" means here:

- One object: an S3 PUT, or a multipart upload once completed, is visible whole or not at all. A stream that fits
  in one part goes up as one PUT; a longer one as a multipart upload with at most two parts in memory (one filling,
  one sending), aborted on any failure or cancellation, so no part stays stored and nothing becomes visible. A
  process killed mid-upload leaves an incomplete upload, never visible as an object, which ``discard_incomplete``
  aborts once it is old enough.
- Several objects (``put_many``): S3 has no transaction across keys. Each object is atomic as above; if any write
  fails, those already written are deleted before the error propagates, so on failure none remains. While the call
  runs, a reader could see some of the objects and not others, which no caller can observe: names are handed out
  only once ``put_many`` returns. A process killed in between leaves objects whose rows (written first, see
  ``reelgate.assets``) let the sweep find them.

Every failure to reach or use the bucket surfaces as ``StorageUnavailable`` (an OSError), never as a botocore type.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import mimetypes
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.response import StreamingBody
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from reelgate.storage.base import ObjectInfo, StorageUnavailable, is_storable

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import (
        CompletedPartTypeDef,
        GetObjectOutputTypeDef,
        ObjectIdentifierTypeDef,
    )

MIB = 1024 * 1024
PART_SIZE = 8 * MIB  # S3's smallest part is 5 MiB; 8 MiB x 10,000 parts allows objects up to 78 GiB
DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_sessions: list[AioSession] = []  # one per process: it keeps botocore's S3 model, a few MB and 0.3 s to load


def _session() -> AioSession:
    if not _sessions:
        _sessions.append(get_session())
    return _sessions[0]


@dataclass(frozen=True)
class S3Location:
    """Where the objects live and how to reach them; credentials left empty come from botocore's usual chain (an
    instance or task role, ~/.aws)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str = ""  # empty: AWS itself
    region: str = ""
    access_key_id: str = field(default="", repr=False)
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)
    presign_seconds: int = 0  # > 0: signed_url gives presigned GETs valid this long

    def url(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"


class S3Storage:
    """Objects in an S3-compatible bucket; the client is made on first use and closed by ``aclose``."""

    def __init__(self, location: S3Location, *, part_size: int = PART_SIZE, attempts: int = 3,
                 connect_timeout: float = 5.0, read_timeout: float = 30.0) -> None:  # fmt: skip
        if part_size < 5 * MIB:
            raise ValueError("S3 parts are at least 5 MiB")
        self.location = location
        self.part_size = part_size
        self._prefix = f"{location.prefix.strip('/')}/" if location.prefix.strip("/") else ""
        self._config = AioConfig(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": attempts, "mode": "standard"},  # the first one included
            # Each response being streamed to a client holds a connection until it ends.
            max_pool_connections=128,
            signature_version="s3v4",  # presigned URLs too: regions opened since 2014 accept nothing older
            # Path-style for MinIO and other self-hosted servers (no wildcard DNS); virtual-hosted for AWS.
            s3={"addressing_style": "path" if location.endpoint_url else "virtual"},
            # Only the checksums S3 requires: some S3-compatible servers refuse the newer default ones.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._stack = AsyncExitStack()
        self._client: S3Client | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"S3Storage({self.location.url()!r})"

    # --- the Storage protocol -------------------------------------------------------------------------------------

    async def put(self, name: str, data: bytes | AsyncIterable[bytes]) -> None:
        key = self._checked(name)
        if isinstance(data, bytes):
            await self._put_object(key, data)
            return
        # Parts fill in place: aiohttp reads an in-memory file in slices (a body of raw bytes above 1 MiB is sent in
        # one write that can stall the event loop) and nothing is copied to become a part.
        part = io.BytesIO()
        upload: _Multipart | None = None
        try:
            async for chunk in data:
                part.write(chunk)
                if part.tell() >= self.part_size:
                    upload = upload or await self._begin(key)
                    await upload.send(part)
                    part = io.BytesIO()
            if upload is None:
                await self._put_object(key, part)
            else:
                if part.tell():
                    await upload.send(part)
                await upload.complete()
        except BaseException:
            if upload is not None:
                await upload.abort()
            raise

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        keys = [(self._checked(name), data) for name, data in items]
        try:
            results = await asyncio.gather(*(self._put_object(k, d) for k, d in keys), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
        except BaseException:
            # Written ones go too, under a shield: a cancelled caller must not leave half of the set behind.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._delete_keys([k for k, _ in keys]))
            raise

    async def open(self, name: str) -> _S3Reader | None:
        key = self._key(name)
        if key is None:
            return None
        # The GET starts here, so the bytes of this version are what a whole-object read sends even if the object
        # is deleted meanwhile; its body waits unread (the socket's window bounds what is buffered).
        answer = await self._get(key)
        return None if answer is None else _S3Reader(self, key, answer)

    async def read(self, name: str) -> bytes | None:
        key = self._key(name)
        answer = None if key is None else await self._get(key)
        if answer is None:
            return None
        with self._translated("reading an object"):
            async with answer["Body"] as body:
                return await body.read()

    async def exists(self, name: str) -> bool:
        key = self._key(name)
        if key is None:
            return False
        s3 = await self._s3()
        with self._translated("looking up an object"):
            try:
                await s3.head_object(Bucket=self.location.bucket, Key=key)
            except ClientError as exc:
                if _missing(exc):
                    return False
                raise
        return True

    async def delete(self, names: Sequence[str]) -> None:
        await self._delete_keys([key for name in names if (key := self._key(name)) is not None])

    def public_url(self, name: str) -> str | None:
        return None  # a presigned URL expires, so the lasting URL handed out is Reelgate's /assets/<name>

    async def signed_url(self, name: str) -> str | None:
        key = self._key(name)
        if key is None or self.location.presign_seconds <= 0:
            return None
        s3 = await self._s3()
        with self._translated("signing a URL"):
            return await s3.generate_presigned_url("get_object", Params={"Bucket": self.location.bucket, "Key": key},
                                                   ExpiresIn=self.location.presign_seconds)  # fmt: skip

    async def discard_incomplete(self, older_than: float) -> int:
        s3 = await self._s3()
        before, aborted = time.time() - older_than, 0
        with self._translated("sweeping incomplete uploads"):
            pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.location.bucket,
                                                                         Prefix=self._prefix)  # fmt: skip
            async for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"].timestamp() < before:
                        await s3.abort_multipart_upload(Bucket=self.location.bucket, Key=upload["Key"],
                                                        UploadId=upload["UploadId"])  # fmt: skip
                        aborted += 1
        return aborted

    async def aclose(self) -> None:
        async with self._lock:
            self._client = None
            await self._stack.aclose()

    # --- inside -----------------------------------------------------------------------------------------------------

    def _key(self, name: str) -> str | None:
        return self._prefix + name if is_storable(name) else None

    def _checked(self, name: str) -> str:
        key = self._key(name)
        if key is None:
            raise ValueError(f"not a storable object name: {name!r}")
        return key

    async def _s3(self) -> S3Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    loc = self.location
                    creator = _session().create_client(
                        "s3",
                        region_name=loc.region or None,
                        endpoint_url=loc.endpoint_url or None,
                        aws_access_key_id=loc.access_key_id or None,
                        aws_secret_access_key=loc.secret_access_key or None,
                        aws_session_token=loc.session_token or None,
                        config=self._config,
                    )
                    with self._translated("connecting"):
                        self._client = await self._stack.enter_async_context(creator)
        return self._client

    @contextlib.contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            raise StorageUnavailable(f"{self!r} failed {doing}: {error.get('Code', '?')} (HTTP {status}) "
                                     f"{error.get('Message', '')}".rstrip()) from exc  # fmt: skip
        except (BotoCoreError, aiohttp.ClientError, TimeoutError) as exc:
            raise StorageUnavailable(f"{self!r} failed {doing}: {exc}") from exc

    async def _put_object(self, key: str, data: bytes | io.BytesIO) -> None:
        body = io.BytesIO(data) if isinstance(data, bytes) else data  # BytesIO shares the bytes: no copy
        body.seek(0)
        s3 = await self._s3()
        with self._translated("storing an object"):
            await s3.put_object(Bucket=self.location.bucket, Key=key, Body=body, ContentType=_media_type(key))

    async def _begin(self, key: str) -> _Multipart:
        s3 = await self._s3()
        with self._translated("starting a multipart upload"):
            answer = await s3.create_multipart_upload(Bucket=self.location.bucket, Key=key,
                                                      ContentType=_media_type(key))  # fmt: skip
        return _Multipart(self, s3, key, answer["UploadId"])

    async def _get(self, key: str, **extra: str) -> GetObjectOutputTypeDef | None:
        s3 = await self._s3()
        with self._translated("reading an object"):
            try:
                return await s3.get_object(Bucket=self.location.bucket, Key=key, **extra)  # type: ignore[arg-type]
            except ClientError as exc:
                if _missing(exc):
                    return None
                raise

    async def _delete_keys(self, keys: list[str]) -> None:
        if not keys:
            return
        s3 = await self._s3()
        for at in range(0, len(keys), DELETE_BATCH):
            batch = keys[at : at + DELETE_BATCH]
            with self._translated("deleting objects"):
                objects: list[ObjectIdentifierTypeDef] = [{"Key": k} for k in batch]
                answer = await s3.delete_objects(
                    Bucket=self.location.bucket, Delete={"Objects": objects, "Quiet": True}
                )
            if errors := answer.get("Errors", []):
                first = errors[0]
                raise StorageUnavailable(f"{self!r} failed deleting {len(errors)} objects: {first.get('Code')} "
                                         f"{first.get('Message', '')}".rstrip())  # fmt: skip


class _Multipart:
    """One multipart upload: parts sent one at a time while the next one fills; complete, or abort."""

    def __init__(self, owner: S3Storage, s3: S3Client, key: str, upload_id: str) -> None:
        self._owner, self._s3, self._key, self._id = owner, s3, key, upload_id
        self._parts: list[CompletedPartTypeDef] = []
        self._sending: asyncio.Task[None] | None = None

    async def send(self, data: io.BytesIO) -> None:
        await self._sent()
        self._sending = asyncio.create_task(self._upload(len(self._parts) + 1, data))
        self._parts.append({"PartNumber": len(self._parts) + 1})

    async def complete(self) -> None:
        await self._sent()
        with self._owner._translated("completing a multipart upload"):
            await self._s3.complete_multipart_upload(Bucket=self._owner.location.bucket, Key=self._key,
                                                     UploadId=self._id,
                                                     MultipartUpload={"Parts": self._parts})  # fmt: skip

    async def abort(self) -> None:
        if self._sending is not None and not self._sending.done():
            self._sending.cancel()
        with contextlib.suppress(BaseException):
            if self._sending is not None:
                await self._sending
        # Shielded, so a caller cancelled twice still frees the parts; a failure here leaves an upload that
        # discard_incomplete removes later, and must not hide the error that brought us here.
        with contextlib.suppress(Exception):
            await asyncio.shield(self._s3.abort_multipart_upload(Bucket=self._owner.location.bucket, Key=self._key,
                                                                 UploadId=self._id))  # fmt: skip

    async def _sent(self) -> None:
        if self._sending is not None:
            sending, self._sending = self._sending, None
            await sending

    async def _upload(self, number: int, data: io.BytesIO) -> None:
        data.seek(0)
        with self._owner._translated("uploading a part"):
            answer = await self._s3.upload_part(Bucket=self._owner.location.bucket, Key=self._key, UploadId=self._id,
                                                PartNumber=number, Body=data)  # fmt: skip
        self._parts[number - 1]["ETag"] = answer["ETag"]


class _S3Reader:
    """An object whose GET has begun: whole-object reads stream that response; a range asks again for the same
    version (``If-Match`` its ETag), since S3 cannot move an open response to another offset."""

    def __init__(self, owner: S3Storage, key: str, answer: GetObjectOutputTypeDef) -> None:
        self._owner, self._key, self._etag = owner, key, answer["ETag"]
        self._body: StreamingBody | None = answer["Body"]
        self.info = ObjectInfo(size=answer["ContentLength"], modified=answer["LastModified"].timestamp())

    async def chunks(self, start: int, end: int, chunk_size: int) -> AsyncIterator[bytes]:
        body, self._body = self._body, None
        if body is None or start != 0:
            if body is not None:
                body.close()
            again = await self._owner._get(self._key, Range=f"bytes={start}-{end}", IfMatch=self._etag)
            if again is None:
                raise StorageUnavailable(f"{self._owner!r}: {self._key} went away while being read")
            body = again["Body"]
        remaining = end - start + 1
        try:
            with self._owner._translated("reading an object"):
                async for chunk in _pieces(body, remaining, chunk_size):
                    remaining -= len(chunk)
                    yield chunk
            if remaining:
                raise StorageUnavailable(f"{self._owner!r}: {self._key} ended {remaining} bytes early")
        finally:
            body.close()  # a no-op once the whole response is read (its connection went back to the pool)

    async def aclose(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None


async def _pieces(body: StreamingBody, size: int, most: int) -> AsyncIterator[bytes]:
    """The first ``size`` bytes of ``body`` (fewer if it ends early), each piece as the socket delivered it, cut to
    at most ``most`` bytes.

    Not ``body.read(n)``: aiohttp answers a read of n bytes by joining the pieces it holds into a new object, a
    copy of every byte served that measured a quarter of the API process's CPU per 50 MB relayed (docs/benchmarks.md,
    "Serving a 50 MiB asset"). ``readchunk`` hands over each received piece itself (up to 256 KiB, uvloop's read
    size); aiohttp still stops reading the socket while it holds more than 128 KiB, so memory stays bounded.
    """
    content = body.raw_stream.content  # the aiohttp response's payload stream
    while size > 0:
        piece, chunk_ended = await content.readchunk()
        if not piece:
            if chunk_ended:  # the end of one chunk of a chunked response (some S3-compatible proxies send them)
                continue
            return
        if len(piece) > size:
            piece = piece[:size]
        size -= len(piece)
        if len(piece) <= most:
            yield piece
        else:
            for at in range(0, len(piece), most):
                yield piece[at : at + most]


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


def _media_type(key: str) -> str:
    # Stored with the object, so a presigned GET (served by the bucket, not Reelgate) has the right Content-Type.
    return mimetypes.guess_type(key)[0] or "application/octet-stream"
