"""The application: Starlette, except that the two hottest routes go straight to their endpoints.

``GET /v1/tasks/{id}`` (polled hard) and ``POST /v1/videos/generations`` are nearly all of the traffic. Through
Starlette, every request passes its error middleware, its exception middleware, the router's match over the route
list and the route's request wrapper: about ten coroutine frames, which every await inside the endpoint (the key
check, the rate limit, the database) suspends and resumes through once more. These two endpoints need none of it:
they are ``guarded`` (every failure becomes the contract's error body inside the endpoint), take their one path
parameter from a fixed prefix and set nothing on the scope that a layer would read. Measured in one process: a
task read costs 30-39 µs of CPU this way against 73-88 µs through the layers (``docs/benchmarks.md``).

Only an exact match takes the short way: the method (GET, or POST), the path and no ``root_path``. Everything else,
``HEAD`` of a task and a trailing slash included, goes through Starlette as before, with the same answers.

A middleware never skips the hot routes. The hot dispatch is itself the innermost layer of the stack Starlette builds
(below every configured middleware and ``max_body_size``'s limit, above the exception middleware and the router), so
a middleware added with ``middleware=`` or ``add_middleware`` wraps the hot routes as it wraps every other route and
the match is made after it has run; the hot routes then still skip the exception middleware and the router. Only
when no middleware is configured at all does a hot request skip the stack entirely.
``tests/api/test_middleware_coverage.py`` fails if a configured middleware misses a hot route.

Every request, hot or not, gets its access line here, at the very edge (``logs.AccessLog``): the method, the route's
template (``/v1/tasks/{task_id}``, so lines of one route group together), the status sent, the time to the last
byte and the account the key belongs to (set on the scope by the key check), never the key.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelgate.api.http import ACCOUNT_SCOPE_KEY
from reelgate.logs import AccessLog

Endpoint = Callable[[Request], Awaitable[Response]]
SUBMIT_PATH = "/v1/videos/generations"
TASK_PREFIX = "/v1/tasks/"
TASK_ROUTE = TASK_PREFIX + "{task_id}"
ROUTE_SCOPE_KEY = "reelgate.route"  # a hot route's template (Starlette's router sets "route" for the others)
LOGGED_PATH_CHARS = 256


class HotPathApp(Starlette):
    """A Starlette application whose task query and submit endpoints skip the router (and, bare, the middleware)."""

    def __init__(self, *, submit: Endpoint, get_task: Endpoint, **options: Any) -> None:
        super().__init__(**options)
        self._submit = submit
        self._get_task = get_task
        self._bare = False  # set when the stack is built: no middleware configured, so none to skip
        self._access = AccessLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._access.enabled():
            await self._logged(scope, receive, send)
        else:
            await self._serve(scope, receive, send)

    async def _logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what the server answers for an application that fails before it answers

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._serve(scope, receive, send_noting_status)
        finally:
            self._access.request(scope["method"], _route_template(scope), scope["path"][:LOGGED_PATH_CHARS], status,
                                 time.perf_counter() - started, scope.get(ACCOUNT_SCOPE_KEY))  # fmt: skip

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._hot_endpoint(scope) if self._bare and scope["type"] == "http" else None
        if endpoint is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack with the hot dispatch as its innermost configured middleware (the module says why)."""
        # Starlette has no hook between the configured middleware and its exception middleware: the hot dispatch
        # joins the list while the stack is built only, so user_middleware still lists just what was configured.
        configured = self.user_middleware
        self._bare = not configured and getattr(self, "max_body_size", None) is None
        self.user_middleware = [*configured, Middleware(_HotRoutes, hot_path=self)]
        try:
            return super().build_middleware_stack()
        finally:
            self.user_middleware = configured

    def _hot_endpoint(self, scope: Scope) -> Endpoint | None:
        """The endpoint for an exact match of a hot route (its path parameter set on the scope), else None."""
        if scope.get("root_path"):
            return None
        method, path = scope["method"], scope["path"]
        if method == "POST":
            if path != SUBMIT_PATH:
                return None
            scope[ROUTE_SCOPE_KEY] = SUBMIT_PATH
            return self._submit
        if method != "GET" or not path.startswith(TASK_PREFIX):
            return None
        task_id = path[len(TASK_PREFIX) :]
        if not task_id or "/" in task_id:  # what Starlette's {task_id} ([^/]+) would not match either
            return None
        scope["path_params"] = {"task_id": task_id}
        scope[ROUTE_SCOPE_KEY] = TASK_ROUTE
        return self._get_task


class _HotRoutes:
    """The hot dispatch inside the middleware stack: an exact match goes to its endpoint, the rest to the router."""

    def __init__(self, app: ASGIApp, *, hot_path: HotPathApp) -> None:
        self._app = app
        self._hot_path = hot_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._hot_path._hot_endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self._app(scope, receive, send)
            return
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


def _route_template(scope: Scope) -> str:
    """The template of the route that answered (``-`` when none matched: a 404 or a 405)."""
    hot = scope.get(ROUTE_SCOPE_KEY)
    if hot is not None:
        return str(hot)
    return str(getattr(scope.get("route"), "path", None) or "-")
