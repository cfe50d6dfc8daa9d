"""Operational routes: liveness, readiness, the model catalogue, Prometheus metrics, OpenAPI and its docs page."""

from __future__ import annotations

import hmac

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.api import docs_page
from reelgate.api.context import ApiContext
from reelgate.api.http import JSON, error_response, guarded
from reelgate.api.model_rules import model_rules
from reelgate.api.openapi import openapi_document
from reelgate.api.tasks import _owner
from reelgate.errors import AuthenticationFailed, ServiceUnavailable, StoreUnavailable
from reelgate.metrics import QueueGauges


def _bearer_matches(request: Request, token: bytes) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Compared as bytes (latin-1 gives back the header's own bytes): compare_digest refuses non-ASCII str.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("latin-1"), token)


def routes(ctx: ApiContext) -> list[Route]:
    service, metrics = ctx.service, ctx.metrics
    document = orjson.dumps(openapi_document(service.catalog))  # ~100 kB, rendered once
    rules = {name: model_rules(spec) for name, spec in service.catalog.items()}  # built once: they never change
    queue = QueueGauges(metrics, service.store.tasks.queue_stats)
    metrics_token = service.settings.metrics_token.encode()

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
        data = [{**spec.public(owner.user_group, served=service.serves(spec)), **rules[name]}
                for name, spec in service.catalog.items()]  # fmt: skip
        return JSON({"object": "list", "data": data})

    async def metrics_page(request: Request) -> Response:
        if metrics_token and not _bearer_matches(request, metrics_token):
            return error_response(AuthenticationFailed(
                "/metrics needs Authorization: Bearer <REELGATE_METRICS_TOKEN>", code="invalid_metrics_token",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'}))  # fmt: skip
        await queue.update()
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *docs_page.routes(),
    ]
