"""Operational routes: liveness, readiness, the model catalogue, Prometheus metrics, OpenAPI and its docs page."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.api import docs_page
from reelgate.api.context import ApiContext
from reelgate.api.http import JSON, guarded
from reelgate.api.metrics_app import metrics_endpoint
from reelgate.api.model_rules import model_rules
from reelgate.api.openapi import openapi_document
from reelgate.api.tasks import _owner
from reelgate.errors import ServiceUnavailable, StoreUnavailable
from reelgate.health import Thresholds, backlog_reader
from reelgate.metrics import BacklogGauges


def routes(ctx: ApiContext) -> list[Route]:
    service, metrics = ctx.service, ctx.metrics
    document = orjson.dumps(openapi_document(service.catalog))  # ~100 kB, rendered once
    rules = {name: model_rules(spec) for name, spec in service.catalog.items()}  # built once: they never change
    gauges = BacklogGauges(metrics, backlog_reader(service.store, Thresholds.from_settings(service.settings)))

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

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/metrics", metrics_endpoint(metrics, gauges, service.settings.metrics_token), methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *docs_page.routes(),
    ]
