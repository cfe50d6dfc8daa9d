"""The file API in EvoLink's shape (``/api/v1/files/...``: upload by Base64, URL or stream, list, delete, quota) and
the files themselves (``GET /files/<name>``); docs/files.md.

Answers carry the vendor's wrapper: ``{"success": true, "code": 200, "msg": ..., "data": ...}``; a refusal is the
contract's error body with the same wrapper beside it (``"success": false``, the HTTP status as ``code``, the
message as ``msg``), so a client written for either reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.api.asset_files import stored_file
from reelgate.api.context import ApiContext
from reelgate.api.http import JSON, Endpoint, guarded, query_int, read_body
from reelgate.api.multipart import MultipartFile
from reelgate.api.tasks import _owner
from reelgate.bodies import json_object
from reelgate.errors import NotFound
from reelgate.files import FileService, file_data
from reelgate.store.files import FileRecord, FileStore

PREFIX = "/api/v1/files"
BaseUrl = Callable[[Request], str]  # where this request's file URLs point
URL_BODY_BYTES = 64 * 1024  # a URL and two names
MAX_PAGE = 1_000_000


def vendor_shaped(endpoint: Endpoint) -> Endpoint:
    """``guarded``, with EvoLink's ``success``/``code``/``msg`` beside the contract's ``error`` on a refusal."""
    inner = guarded(endpoint)

    async def wrapper(request: Request) -> Response:
        response = await inner(request)
        if response.status_code < 400 or not isinstance(response, JSON):
            return response
        error = orjson.loads(response.body)["error"]
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
        return JSON({"success": False, "code": response.status_code, "msg": error["message"], "error": error},
                    status_code=response.status_code, headers=headers)  # fmt: skip

    wrapper.__name__ = endpoint.__name__
    return wrapper


def _ok(msg: str, data: Any) -> JSON:
    return JSON({"success": True, "code": 200, "msg": msg, "data": data})


def _disposition(record: FileRecord, download: bool) -> str:
    """``inline`` (or ``attachment``) with the file's name, ASCII-safe and exact in UTF-8 (RFC 6266)."""
    fallback = record.file_name.encode("ascii", "replace").decode().replace("?", "_")
    kind = "attachment" if download else "inline"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(record.file_name, safe='')}"


def routes(ctx: ApiContext) -> list[Route]:
    service = ctx.service
    files = FileService(service.settings, FileStore(service.store.db), service.assets.storage, service.media)
    ctx.on_shutdown.append(files.aclose)

    def base_url(request: Request) -> str:
        return service.settings.public_base_url or str(request.base_url).rstrip("/")

    return [*_upload_routes(ctx, files, base_url), *_file_routes(ctx, files, base_url)]


def _upload_routes(ctx: ApiContext, files: FileService, base_url: BaseUrl) -> list[Route]:
    def uploaded(request: Request, record: FileRecord) -> JSON:
        return _ok("File uploaded successfully", file_data(record, base_url(request)))

    @vendor_shaped
    async def upload_base64(request: Request) -> Response:
        owner = await _owner(ctx, request)
        async with files.uploading(owner):
            raw = await read_body(request, files.base64_body_limit)
            return uploaded(request, await files.upload_base64(owner, raw))

    @vendor_shaped
    async def upload_url(request: Request) -> Response:
        owner = await _owner(ctx, request)
        async with files.uploading(owner):
            body = json_object(await read_body(request, URL_BODY_BYTES))
            return uploaded(request, await files.upload_url(owner, body))

    @vendor_shaped
    async def upload_stream(request: Request) -> Response:
        owner = await _owner(ctx, request)
        async with files.uploading(owner):
            form = MultipartFile(request, file_field="file", max_file=files.max_bytes)
            try:
                return uploaded(request, await files.upload_stream(owner, await form.open()))
            finally:
                await form.aclose()

    return [
        Route(f"{PREFIX}/upload/base64", upload_base64, methods=["POST"]),
        Route(f"{PREFIX}/upload/url", upload_url, methods=["POST"]),
        Route(f"{PREFIX}/upload/stream", upload_stream, methods=["POST"]),
    ]


def _file_routes(ctx: ApiContext, files: FileService, base_url: BaseUrl) -> list[Route]:
    @vendor_shaped
    async def list_files(request: Request) -> Response:
        owner = await _owner(ctx, request)
        page = query_int(request, "page", 1, high=MAX_PAGE)
        size_name = "page_size" if "page_size" in request.query_params else "pageSize"
        size = query_int(request, size_name, 20)
        records, total = await files.page(owner, page, size)
        base = base_url(request)
        return _ok("ok", {"files": [file_data(r, base) for r in records], "total": total, "page": page,
                          "pageSize": size, "has_more": page * size < total})  # fmt: skip

    @vendor_shaped
    async def delete_file(request: Request) -> Response:
        owner = await _owner(ctx, request)
        file_id = request.path_params["file_id"]
        gone = await files.delete(owner, file_id)
        if gone is None:
            raise NotFound(f"file {file_id[:40]!r} not found (deleted, expired, or never uploaded by this account)",
                           param="file_id", code="file_not_found")  # fmt: skip
        return _ok("File deleted successfully", {"file_id": gone.id, "deleted": True})

    @vendor_shaped
    async def quota(request: Request) -> Response:
        owner = await _owner(ctx, request)
        return JSON({"success": True, "code": 200, "data": await files.quota(owner)})

    @guarded
    async def serve(request: Request) -> Response:
        # A capability URL like /assets: whoever holds it may read the file until it expires or is deleted.
        name = request.path_params["name"]
        opened = await files.open(name)
        if opened is None:
            raise NotFound("no such file (it expired or was deleted)", code="file_not_found")
        record, reader = opened
        response = await stored_file(request, name, reader)
        response.headers["content-type"] = record.mime_type
        response.headers["content-disposition"] = _disposition(record, "download" in request.query_params)
        return response

    return [
        Route(f"{PREFIX}/list", list_files, methods=["GET"]),
        Route(f"{PREFIX}/quota", quota, methods=["GET"]),
        Route(PREFIX + "/{file_id}", delete_file, methods=["DELETE"]),
        Route("/files/{name}", serve, methods=["GET", "HEAD"]),
    ]
