"""``GET /v1/credits``: the calling key's and its account's remaining and used credits, in EvoLink's shape."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.api.context import ApiContext
from reelgate.api.http import JSON, guarded
from reelgate.api.tasks import _owner


def routes(ctx: ApiContext) -> list[Route]:
    @guarded
    async def credits(request: Request) -> Response:
        return JSON(await ctx.service.credits(await _owner(ctx, request)))

    return [Route("/v1/credits", credits, methods=["GET"])]
