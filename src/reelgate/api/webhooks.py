"""Webhook routes for tenants: the signing secret's id, its rotation, and resending a task's dead callback.

``GET /v1/webhooks/secret`` shows the id (never the secret); ``POST /v1/webhooks/secret/rotate`` answers the new
secret, this once; ``POST /v1/tasks/{task_id}/callbacks/resend`` queues a dead delivery again (202), a few times a
minute per account.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.api.context import ApiContext
from reelgate.api.http import JSON, guarded
from reelgate.api.tasks import _owner
from reelgate.errors import RateLimited
from reelgate.store.accounts import KeyOwner
from reelgate.webhook_service import WebhookService

RESENDS_PER_MINUTE = 5  # per account: a person catching up after fixing a receiver, not a retry loop
NO_STORE = {"Cache-Control": "no-store"}  # the answer holds a secret: no cache on the way may keep it


async def _resend_budget(ctx: ApiContext, owner: KeyOwner) -> None:
    """Spend one of the account's resends, or refuse with 429 and Retry-After.

    The request limiter's buckets are keyed by number and API keys use their ids (from 1), so an account's resend
    budget is the bucket of the negative of its id: the same token buckets, shared through Redis when the request
    limits are, and failing open to this process's bucket as they do.
    """
    try:
        await ctx.limiter.check(-owner.account_id, RESENDS_PER_MINUTE)
    except RateLimited as exc:
        wait = exc.headers.get("Retry-After", "60")
        raise RateLimited(f"callback resends are limited to {RESENDS_PER_MINUTE} a minute per account; retry in "
                          f"{wait} s", headers={"Retry-After": wait}) from None  # fmt: skip


def routes(ctx: ApiContext) -> list[Route]:
    hooks = WebhookService(ctx.service.store, ctx.service.on_callback_queued)

    @guarded
    async def secret(request: Request) -> Response:
        owner = await _owner(ctx, request)
        return JSON((await hooks.secret(owner.account_id)).public())

    @guarded
    async def rotate(request: Request) -> Response:
        owner = await _owner(ctx, request)
        return JSON((await hooks.rotate(owner.account_id)).public(), headers=NO_STORE)

    @guarded
    async def resend(request: Request) -> Response:
        owner = await _owner(ctx, request)
        await _resend_budget(ctx, owner)
        task = await ctx.service.get(request.path_params["task_id"], owner)  # 400 for a malformed id, 404 foreign
        return JSON(await hooks.resend(task), status_code=202)

    return [
        Route("/v1/webhooks/secret", secret, methods=["GET"]),
        Route("/v1/webhooks/secret/rotate", rotate, methods=["POST"]),
        Route("/v1/tasks/{task_id}/callbacks/resend", resend, methods=["POST"]),
    ]
