"""The application factory: routes, the one error handler, and the lifespan that starts background work."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from reelgate.api import credits, elements, files, system, tasks, upstream_hook, webhooks
from reelgate.api.context import ApiContext
from reelgate.api.hot_path import SUBMIT_PATH, TASK_PREFIX, HotPathApp
from reelgate.api.http import error_response
from reelgate.console import routes as console_routes
from reelgate.errors import ApiError, InvalidRequest, NotFound
from reelgate.heap import freeze_startup_objects


def _allowed_methods(routes: list[BaseRoute], request: Request) -> str:
    """Every method of the request's path (RFC 9110 Allow): the methods of all the routes with the path template
    of the first route that matched, so ``GET`` and ``DELETE /v1/elements/{element_id}`` both show (Starlette's own
    405 lists only the first route's), while ``/api/v1/files/list`` is the list route's alone, not also the
    ``/api/v1/files/{file_id}`` route's its path happens to match."""
    matched = [r for r in routes if isinstance(r, Route) and r.matches(request.scope)[0] is not Match.NONE]
    methods = {m for r in matched if r.path == matched[0].path for m in r.methods or ()} if matched else set()
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"no route {request.method} {request.url.path}", code="route_not_found"))
    if exc.status_code == 405:
        err = ApiError(f"method {request.method} is not allowed on {request.url.path}", code="method_not_allowed")
        err.status, err.type = 405, "invalid_request_error"
        err.headers = {**(exc.headers or {}), "Allow": _allowed_methods(request.app.routes, request)}
        return error_response(err)
    return error_response(InvalidRequest(str(exc.detail)))


def create_app(ctx: ApiContext) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for start in ctx.on_startup:
            await start()
        freeze_startup_objects()
        try:
            yield
        finally:
            ctx.shutting_down = True
            for stop in ctx.on_shutdown:
                await stop()

    task_routes = tasks.routes(ctx)
    endpoints = {(route.path, method): route.endpoint for route in task_routes for method in route.methods or ()}
    app = HotPathApp(
        submit=endpoints[SUBMIT_PATH, "POST"],
        get_task=endpoints[TASK_PREFIX + "{task_id}", "GET"],
        routes=[
            *task_routes,
            *elements.routes(ctx),
            *credits.routes(ctx),
            *files.routes(ctx),
            *webhooks.routes(ctx),
            *system.routes(ctx),
            *upstream_hook.routes(ctx),
            *console_routes(ctx.service, ctx.limiter),  # the operator web console at /console
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    return app
