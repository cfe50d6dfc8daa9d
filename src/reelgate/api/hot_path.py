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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
SUBMIT_PATH = "/v1/videos/generations"
TASK_PREFIX = "/v1/tasks/"


class HotPathApp(Starlette):
    """A Starlette application whose task query and submit endpoints skip the middleware and the router."""

    def __init__(self, *, submit: Endpoint, get_task: Endpoint, **options: Any) -> None:
        super().__init__(**options)
        self._submit = submit
        self._get_task = get_task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._hot_endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    def _hot_endpoint(self, scope: Scope) -> Endpoint | None:
        """The endpoint for an exact match of a hot route (its path parameter set on the scope), else None."""
        if scope.get("root_path"):
            return None
        method, path = scope["method"], scope["path"]
        if method == "POST":
            return self._submit if path == SUBMIT_PATH else None
        if method != "GET" or not path.startswith(TASK_PREFIX):
            return None
        task_id = path[len(TASK_PREFIX) :]
        if not task_id or "/" in task_id:  # what Starlette's {task_id} ([^/]+) would not match either
            return None
        scope["path_params"] = {"task_id": task_id}
        return self._get_task
