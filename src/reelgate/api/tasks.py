"""Task routes: submit, query (the hottest route), list (by status, model or error code), cancel and the callback
delivery log."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.api.context import ApiContext
from reelgate.api.hot_path import SUBMIT_PATH, TASK_PREFIX
from reelgate.api.http import (
    ACCOUNT_SCOPE_KEY,
    JSON,
    guarded,
    query_choice,
    query_cursor,
    query_int,
    query_value,
    read_body,
)
from reelgate.domain import STATUSES, TASK_ERROR_CODES, is_task_id
from reelgate.errors import InvalidRequest, ServiceUnavailable
from reelgate.service import Submission
from reelgate.store.accounts import KeyOwner

ERROR_CODES = sorted(TASK_ERROR_CODES)  # listed in this order by a refusal, whatever the process's hash seed


async def _owner(ctx: ApiContext, request: Request) -> KeyOwner:
    owner = await ctx.keys.owner(request.headers.get("authorization"))
    request.scope[ACCOUNT_SCOPE_KEY] = owner.account_id  # the access line's account (api/hot_path.py)
    per_minute = owner.rate_limit_per_minute
    await ctx.limiter.check(
        owner.key_id, ctx.service.settings.rate_limit_per_minute if per_minute is None else per_minute
    )
    return owner


def routes(ctx: ApiContext) -> list[Route]:
    service, metrics = ctx.service, ctx.metrics
    submit_latency = metrics.request_latency.labels("submit", "any")
    query_latency = metrics.request_latency.labels("get_task", "any")

    @guarded
    async def submit(request: Request) -> Response:
        started = time.perf_counter()
        if ctx.shutting_down:
            raise ServiceUnavailable("the service is shutting down; retry on another instance",
                                     headers={"Retry-After": "1"})  # fmt: skip
        owner = await _owner(ctx, request)
        key = request.headers.get("idempotency-key")
        # A large body (Base64 media) is refused from the account first if it can be, so it is not even read; it
        # is parsed only in the media pool, off the event loop. A small body is parsed here.
        pre = await service.precheck_upload(owner, key, request.headers.get("content-length"))
        raw = await read_body(request, service.settings.max_body_bytes)
        task = await service.submit(Submission.received(raw, owner, key, pre))
        submit_latency.observe(time.perf_counter() - started)
        return JSON(task.public())

    @guarded
    async def get_task(request: Request) -> Response:
        started = time.perf_counter()
        owner = await _owner(ctx, request)
        task = await service.get(request.path_params["task_id"], owner)
        query_latency.observe(time.perf_counter() - started)
        return JSON(task.public())

    @guarded
    async def list_tasks(request: Request) -> Response:
        owner = await _owner(ctx, request)
        status = query_choice(request, "status", STATUSES)
        error_code = query_choice(request, "error_code", ERROR_CODES)  # a failed task's error.code
        model = query_value(request, "model", max_length=64)
        if model is not None and model not in service.catalog:
            raise InvalidRequest(f"model {model!r} does not exist; see GET /v1/models", param="model",
                                 code="model_not_found")  # fmt: skip
        after = query_cursor(request, "after", is_task_id, "a task id (task-unified-<seconds>-<8 characters>)")
        limit = query_int(request, "limit", 20)
        tasks = await service.list_tasks(owner, status=status or "", model=model or "", after=after or "",
                                         limit=limit + 1, error_code=error_code or "")  # fmt: skip
        page = tasks[: max(1, min(limit, 100))]
        return JSON({"object": "list", "data": [t.public() for t in page], "has_more": len(tasks) > len(page),
                     "last_id": page[-1].id if page else None})  # fmt: skip

    @guarded
    async def cancel(request: Request) -> Response:
        owner = await _owner(ctx, request)
        task = await service.cancel(request.path_params["task_id"], owner)
        return JSON(task.public())

    @guarded
    async def callbacks(request: Request) -> Response:
        owner = await _owner(ctx, request)
        return JSON(await service.callbacks(request.path_params["task_id"], owner))

    return [
        Route(SUBMIT_PATH, submit, methods=["POST"]),
        Route("/v1/tasks", list_tasks, methods=["GET"]),
        Route(TASK_PREFIX + "{task_id}", get_task, methods=["GET"]),
        Route("/v1/tasks/{task_id}/cancel", cancel, methods=["POST"]),
        Route("/v1/tasks/{task_id}/callbacks", callbacks, methods=["GET"]),
    ]
