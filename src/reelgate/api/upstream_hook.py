"""A vendor's own task callback, accepted only as a hint to poll that task sooner; its body is never trusted.

A provider gives its vendor ``/hooks/<provider>/<task id>/<signature>`` as a task's callback URL (that path is a
promise to the vendor: it must keep working). The provider of that name signed it and alone verifies it
(providers.VerifiesHooks).
"""

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
from reelgate.providers import HOOKS_PREFIX, VerifiesHooks, hook_path

log = logging.getLogger("reelgate.hooks")


def routes(ctx: ApiContext) -> list[Route]:
    """``POST /hooks/{provider}/{task_id}/{signature}``: the URL a provider gave its vendor as ``callback_url``."""
    service = ctx.service

    @guarded
    async def hint(request: Request) -> Response:
        name, task_id, signature = (request.path_params[k] for k in ("provider", "task_id", "signature"))
        provider = service.providers.get(name)
        if not isinstance(provider, VerifiesHooks):
            # No provider of that name takes callbacks: the answer of a route that does not exist.
            raise NotFound(f"no route POST {request.url.path}", code="route_not_found")
        # A path that cannot be ours answers exactly as a forged one does; only a task id ever reaches the store.
        if not (task_id.isascii() and is_task_id(task_id)) or not provider.verify_hook(task_id, signature):
            raise NotFound(f"no route POST {HOOKS_PREFIX}/{name}/...", code="route_not_found")
        # The body (status, element id) is ignored on purpose: the unsigned payload only triggers a real poll.
        moved = await service.store.tasks.poll_soon(task_id, time.time(), name)
        log.info("upstream callback hint", extra={"task_id": task_id, "provider": name, "poll_now": moved})
        return JSON({"ok": True})

    return [Route(hook_path("{provider}", "{task_id}", "{signature}"), hint, methods=["POST"])]
