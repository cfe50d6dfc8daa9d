"""Element routes: list, retrieve and delete the caller's subject elements; stored media files."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from reelgate.api.context import ApiContext
from reelgate.api.http import JSON, guarded, query_cursor, query_int
from reelgate.api.tasks import _owner
from reelgate.errors import NotFound


def _is_element_id(value: str) -> bool:
    return value.isdigit() and len(value) <= 20  # query_cursor has checked it is ASCII: a 64-bit id at most


_MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "mp4": "video/mp4", "mov": "video/quicktime"}


def routes(ctx: ApiContext) -> list[Route]:
    service = ctx.service

    @guarded
    async def list_elements(request: Request) -> Response:
        owner = await _owner(ctx, request)
        limit = query_int(request, "limit", 20)
        after = query_cursor(request, "after", _is_element_id, "an element id (decimal digits)")
        found = await service.list_elements(owner, after=after or "", limit=limit + 1)
        page = found[: max(1, min(limit, 100))]
        return JSON({"object": "list", "data": [e.public() for e in page], "has_more": len(found) > len(page),
                     "last_id": page[-1].id if page else None})  # fmt: skip

    @guarded
    async def get_element(request: Request) -> Response:
        owner = await _owner(ctx, request)
        return JSON((await service.element(request.path_params["element_id"], owner)).public())

    @guarded
    async def delete_element(request: Request) -> Response:
        owner = await _owner(ctx, request)
        gone = await service.delete_element(request.path_params["element_id"], owner)
        return JSON({"object": "element", "id": gone.id, "deleted": True})

    @guarded
    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        path = service.assets.path_for(name)
        if path is None:
            raise NotFound("no such stored file", code="asset_not_found")
        ext = name.rsplit(".", 1)[-1]
        # Content-addressed: a name never changes meaning, so clients and CDNs may cache it for good.
        headers = {"Cache-Control": "public, max-age=31536000, immutable"}
        return FileResponse(path, media_type=_MEDIA_TYPES.get(ext), headers=headers)

    return [
        Route("/v1/elements", list_elements, methods=["GET"]),
        Route("/v1/elements/{element_id}", get_element, methods=["GET"]),
        Route("/v1/elements/{element_id}", delete_element, methods=["DELETE"]),
        Route("/assets/{name}", asset, methods=["GET", "HEAD"]),
    ]
