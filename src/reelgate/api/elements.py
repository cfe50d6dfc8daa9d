"""Element routes: list, retrieve and delete the caller's subject elements; stored media files."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.api.asset_files import asset_response
from reelgate.api.context import ApiContext
from reelgate.api.http import JSON, guarded, query_cursor, query_int
from reelgate.api.tasks import _owner


def _is_element_id(value: str) -> bool:
    return value.isdigit() and len(value) <= 20  # query_cursor has checked it is ASCII: a 64-bit id at most


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
        # A capability URL: whoever holds the name may read the file (the account it was given to, the vendor it
        # was handed to); a content hash is never a name, and a deleted element's files are gone (404).
        return await asset_response(request, service.assets, request.path_params["name"])

    return [
        Route("/v1/elements", list_elements, methods=["GET"]),
        Route("/v1/elements/{element_id}", get_element, methods=["GET"]),
        Route("/v1/elements/{element_id}", delete_element, methods=["DELETE"]),
        Route("/assets/{name}", asset, methods=["GET", "HEAD"]),
    ]
