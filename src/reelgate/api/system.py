"""Operational routes: liveness, readiness, the model catalogue, Prometheus metrics, OpenAPI and its docs page."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from reelgate.api.context import ApiContext
from reelgate.api.http import JSON, guarded
from reelgate.api.openapi import DOCS_HTML, openapi_document
from reelgate.api.tasks import _owner
from reelgate.errors import ServiceUnavailable, StoreUnavailable


def routes(ctx: ApiContext) -> list[Route]:
    service, metrics = ctx.service, ctx.metrics
    document = openapi_document(service.catalog)

    async def healthz(request: Request) -> Response:
        return JSON({"status": "ok"})

    @guarded
    async def readyz(request: Request) -> Response:
        if ctx.shutting_down:
            raise ServiceUnavailable("shutting down")
        try:
            seconds = await service.store.ping()
        except (StoreUnavailable, OSError) as exc:
            raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from None
        # A Redis outage leaves the process ready: the limiter fails open to a per-process bucket (ratelimit.py).
        limiter = await ctx.limiter.health()
        return JSON({"status": "ready", "database": service.store.db.dialect, "db_ping_ms": round(seconds * 1000, 2),
                     "rate_limiter": limiter})  # fmt: skip

    @guarded
    async def models(request: Request) -> Response:
        owner = await _owner(ctx, request)
        data = [spec.public(owner.user_group) for spec in service.catalog.values()]
        return JSON({"object": "list", "data": data})

    async def metrics_page(request: Request) -> Response:
        try:
            depth, oldest = await service.store.tasks.queue_stats(time.time())
            metrics.queue_depth.set(depth)
            metrics.oldest_due.set(oldest)
        except StoreUnavailable:
            pass  # the page still answers with what this process knows
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(request: Request) -> Response:
        return JSON(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
