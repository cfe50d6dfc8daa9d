"""Every configured middleware wraps the hot routes too (api/hot_path.py): none can silently skip them."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness import Api, auth, image_body
from reelgate.api.hot_path import SUBMIT_PATH, HotPathApp

# Media on a closed loopback port: a task made of it fails at once, and nothing leaves the machine.
BODY = image_body("http://127.0.0.1:9/front.jpg", "http://127.0.0.1:9/side.jpg")


class Stamp:
    """A middleware added later, as a new one would be: it stamps a header on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-stamp", b"1")]
            await send(message)

        await self.app(scope, receive, stamped if scope["type"] == "http" else send)


class Passed:
    """Placed just inside a configured middleware: records each request that middleware let through."""

    def __init__(self, app: ASGIApp, *, name: str, seen: dict[str, list[str]]) -> None:
        self.app, self.name, self.seen = app, name, seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.setdefault(self.name, []).append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


def _spied(configured: list[Middleware], seen: dict[str, list[str]]) -> list[Middleware]:
    """The configured middleware, each followed by a recorder of what it passed inwards."""
    spied: list[Middleware] = []
    for index, middleware in enumerate(configured):
        spied += [middleware, Middleware(Passed, name=f"{index}:{middleware.cls!r}", seen=seen)]
    return spied


async def test_every_configured_middleware_wraps_the_hot_routes(api: Api) -> None:
    """create_app's middleware, plus one added later, each see the hot routes as they see every other route."""
    key = await api.key(credits=5)
    api.app.add_middleware(Stamp)  # before the first request: the stack is built then
    seen: dict[str, list[str]] = {}
    api.app.user_middleware = _spied(api.app.user_middleware, seen)
    task_id = "task-unified-1700000000-abcdefgh"
    answers = [
        await api.client.get("/healthz"),  # a route through Starlette's router
        await api.client.get(f"/v1/tasks/{task_id}", headers=auth(key)),
        await api.client.get(f"/v1/tasks/{task_id}"),  # no key: the endpoint's own 401
        await api.client.post(SUBMIT_PATH, headers=auth(key), json=BODY),
    ]
    assert [answer.headers.get("x-stamp") for answer in answers] == ["1"] * len(answers)
    expected = ["GET /healthz", f"GET /v1/tasks/{task_id}", f"GET /v1/tasks/{task_id}", f"POST {SUBMIT_PATH}"]
    assert len(seen) == len(api.app.user_middleware) // 2
    for name, paths in seen.items():
        assert paths == expected, (
            f"{name} misses a route: the hot dispatch must stay inside the stack (api/hot_path.py)"
        )


async def _echo_size(request: Request) -> Response:
    return JSONResponse({"size": len(await request.body())})


def _hot_app(**options: Any) -> HotPathApp:
    return HotPathApp(submit=_echo_size, get_task=_echo_size, **options)


async def _call(app: HotPathApp, body: bytes) -> int:
    """The status of a hot submit carrying ``body``, through the app as a server would call it."""
    statuses: list[int] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {"type": "http", "method": "POST", "path": SUBMIT_PATH, "root_path": "", "headers": [], "query_string": b""}
    await app(scope, receive, send)
    return statuses[0]


async def test_a_body_limit_applies_to_the_hot_submit() -> None:
    """Starlette's own max_body_size layer is middleware too: the hot submit answers 413 like any route."""
    if "max_body_size" not in inspect.signature(Starlette.__init__).parameters:
        pytest.skip("this Starlette has no max_body_size")
    assert await _call(_hot_app(), b"x" * 100) == 200
    assert await _call(_hot_app(max_body_size=10), b"x" * 100) == 413


async def test_only_an_app_without_middleware_skips_the_stack() -> None:
    bare, wrapped = _hot_app(), _hot_app(middleware=[Middleware(Stamp)])
    assert await _call(bare, b"{}") == await _call(wrapped, b"{}") == 200
    assert bare._bare and not wrapped._bare
