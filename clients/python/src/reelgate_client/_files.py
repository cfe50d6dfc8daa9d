"""``client.files``: the file API (``/api/v1/files``) — upload an image (streamed from disk, by URL or as Base64) to
get a URL usable in any generation request, then list, delete, and read the account's quota.

``upload(path)`` streams the file as multipart/form-data (never read whole into memory) and is retried like every
request (the file is opened again for each attempt). Files expire after the server's retention (72 h by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from reelgate_client._base import AsyncAPIClient, BaseClient, SyncAPIClient, _json
from reelgate_client._errors import MediaInputError
from reelgate_client._media import MediaInput, encode_media
from reelgate_client._version import __version__

PREFIX = "/api/v1/files"
FileInput = str | os.PathLike[str] | bytes


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class File:
    """An uploaded file (EvoLink's ``FileData``); ``url`` goes into a generation request as an image URL."""

    id: str
    url: str
    download_url: str
    file_name: str
    original_name: str
    size: int
    mime_type: str
    upload_path: str
    upload_time: str  # ISO 8601
    expires_at: str  # ISO 8601
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> File:
        return cls(
            id=str(data.get("file_id", "")), url=str(data.get("file_url", "")),
            download_url=str(data.get("download_url", "")), file_name=str(data.get("file_name", "")),
            original_name=str(data.get("original_name", "")), size=int(data.get("file_size") or 0),
            mime_type=str(data.get("mime_type", "")), upload_path=str(data.get("upload_path", "")),
            upload_time=str(data.get("upload_time", "")), expires_at=str(data.get("expires_at", "")), raw=data,
        )  # fmt: skip


@dataclass(frozen=True)
class FilePage:
    """One page of ``files.list``: the files (newest first), how many there are in all, and whether more follow."""

    files: list[File]
    total: int
    page: int
    page_size: int
    has_more: bool
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FilePage:
        files = [File.from_dict(_dict(f)) for f in data.get("files") or []]
        return cls(files, int(data.get("total") or 0), int(data.get("page") or 1), int(data.get("pageSize") or 0),
                   bool(data.get("has_more")), data)  # fmt: skip


@dataclass(frozen=True)
class FileQuota:
    """How many files the account keeps now, its quota, and how many more it may upload."""

    used: int
    max: int
    remaining: int
    user_group: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileQuota:
        return cls(int(data.get("used_files") or 0), int(data.get("max_files") or 0),
                   int(data.get("remain_files") or 0), str(data.get("user_group", "")), data)  # fmt: skip


def _names(file_name: str | None, upload_path: str | None) -> dict[str, str]:
    return {k: v for k, v in (("file_name", file_name), ("upload_path", upload_path)) if v is not None}


@contextlib.contextmanager
def _opened(file: FileInput) -> Iterator[tuple[str, IO[bytes]]]:
    """The file's name and an open handle (read by httpx in chunks as it sends), for one attempt."""
    if isinstance(file, bytes | bytearray | memoryview):
        yield "upload", io.BytesIO(bytes(file))
        return
    path = Path(file).expanduser()
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise MediaInputError(f"no such file {str(path)!r}") from None
    except OSError as exc:
        raise MediaInputError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    with handle:
        yield path.name, handle


def _upload_request(client: BaseClient, http: httpx.Client | httpx.AsyncClient, name: str, handle: IO[bytes],
                    fields: dict[str, str]) -> httpx.Request:  # fmt: skip
    headers = {"Authorization": f"Bearer {client.api_key}", "Accept": "application/json",
               "User-Agent": f"reelgate-python/{__version__}"}  # fmt: skip
    # The declared type is only a label: the server judges the file by its content.
    files = {"file": (name, handle, "application/octet-stream")}
    return http.build_request("POST", client.base_url + PREFIX + "/upload/stream", headers=headers, data=fields,
                              files=files, timeout=client.timeout)  # fmt: skip


def _data(answer: Any) -> dict[str, Any]:
    return _dict(_dict(answer).get("data"))


class Files:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def upload(self, file: FileInput, *, file_name: str | None = None, upload_path: str | None = None) -> File:
        """Upload a local image (a path, or bytes) as a stream; its ``File``, whose ``url`` a request may use."""
        client, attempt = self._client, 0
        while True:
            with _opened(file) as (name, handle):
                request = _upload_request(client, client._http, name, handle, _names(file_name, upload_path))
                try:
                    response = client._http.send(request)
                except httpx.TransportError as exc:
                    delay = client._after_failure(request, attempt, None, exc)
                else:
                    if response.is_success:
                        return File.from_dict(_data(_json(response)))
                    delay = client._after_failure(request, attempt, response, None)
            time.sleep(delay)
            attempt += 1

    def upload_url(self, url: str, *, file_name: str | None = None, upload_path: str | None = None) -> File:
        """Have the server download an image from a public URL."""
        body = {"file_url": url, **_names(file_name, upload_path)}
        return File.from_dict(_data(self._client.request("POST", PREFIX + "/upload/url", json=body)))

    def upload_base64(self, image: MediaInput, *, file_name: str | None = None,
                      upload_path: str | None = None) -> File:  # fmt: skip
        """Upload an image sent as Base64 in JSON (bytes, a path, or a Base64 / data URL string)."""
        body = {"base64_data": encode_media(image, "image", "image"), **_names(file_name, upload_path)}
        return File.from_dict(_data(self._client.request("POST", PREFIX + "/upload/base64", json=body)))

    def list(self, *, page: int = 1, page_size: int = 20) -> FilePage:
        answer = self._client.request("GET", PREFIX + "/list", params={"page": page, "pageSize": page_size})
        return FilePage.from_dict(_data(answer))

    def delete(self, file_id: str) -> str:
        """Delete a file (its URL answers 404 from now on); its id."""
        answer = self._client.request("DELETE", f"{PREFIX}/{quote(file_id, safe='')}")
        return str(_data(answer).get("file_id", file_id))

    def quota(self) -> FileQuota:
        return FileQuota.from_dict(_data(self._client.request("GET", PREFIX + "/quota")))


class AsyncFiles:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def upload(self, file: FileInput, *, file_name: str | None = None, upload_path: str | None = None) -> File:
        """Upload a local image (a path, or bytes) as a stream; its ``File``, whose ``url`` a request may use."""
        client, attempt = self._client, 0
        while True:
            with _opened(file) as (name, handle):
                request = _upload_request(client, client._http, name, handle, _names(file_name, upload_path))
                try:
                    response = await client._http.send(request)
                except httpx.TransportError as exc:
                    delay = client._after_failure(request, attempt, None, exc)
                else:
                    if response.is_success:
                        return File.from_dict(_data(_json(response)))
                    delay = client._after_failure(request, attempt, response, None)
            await asyncio.sleep(delay)
            attempt += 1

    async def upload_url(self, url: str, *, file_name: str | None = None, upload_path: str | None = None) -> File:
        body = {"file_url": url, **_names(file_name, upload_path)}
        return File.from_dict(_data(await self._client.request("POST", PREFIX + "/upload/url", json=body)))

    async def upload_base64(self, image: MediaInput, *, file_name: str | None = None,
                            upload_path: str | None = None) -> File:  # fmt: skip
        body = {"base64_data": encode_media(image, "image", "image"), **_names(file_name, upload_path)}
        return File.from_dict(_data(await self._client.request("POST", PREFIX + "/upload/base64", json=body)))

    async def list(self, *, page: int = 1, page_size: int = 20) -> FilePage:
        answer = await self._client.request("GET", PREFIX + "/list", params={"page": page, "pageSize": page_size})
        return FilePage.from_dict(_data(answer))

    async def delete(self, file_id: str) -> str:
        answer = await self._client.request("DELETE", f"{PREFIX}/{quote(file_id, safe='')}")
        return str(_data(answer).get("file_id", file_id))

    async def quota(self) -> FileQuota:
        return FileQuota.from_dict(_data(await self._client.request("GET", PREFIX + "/quota")))
