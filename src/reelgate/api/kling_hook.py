"""Kling's own task callback, accepted only as a hint to poll that task sooner; its body is never trusted."""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.api.context import ApiContext
from reelgate.api.http import JSON, guarded
from reelgate.domain import is_task_id
from reelgate.errors import NotFound
from reelgate.providers.kling import HOOK_PATH, KlingProvider
from reelgate.store.kling import poll_soon

log = logging.getLogger("reelgate.kling")


def routes(ctx: ApiContext) -> list[Route]:
    """``POST /hooks/kling/{task_id}/{signature}``: the URL Reelgate gave Kling as ``callback_url``."""
    service = ctx.service

    @guarded
    async def hint(request: Request) -> Response:
        provider = service.providers.get("kling")
        task_id, signature = request.path_params["task_id"], request.path_params["signature"]
        # A path that cannot be ours answers exactly as a forged one does; only a task id ever reaches the store.
        shaped = task_id.isascii() and is_task_id(task_id)
        if not shaped or not isinstance(provider, KlingProvider) or not provider.verify_hook(task_id, signature):
            raise NotFound(f"no route POST {HOOK_PATH}/...", code="route_not_found")
        # The body (status, element id) is ignored on purpose: the unsigned payload only triggers a real poll.
        moved = await poll_soon(service.store.db, task_id, time.time())
        log.info("Kling callback hint", extra={"task_id": task_id, "poll_now": moved})
        return JSON({"ok": True})

    return [Route(HOOK_PATH + "/{task_id}/{signature}", hint, methods=["POST"])]
