"""The hot routes' short way (api/hot_path.py) answers exactly as Starlette's router and middleware would."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from harness import Api, auth, image_body
from reelgate.api.hot_path import HotPathApp

# Answers that differ between two calls of the same request, whichever way it goes.
VOLATILE = ("id", "created", "task_info")
# Media on a closed loopback port: a task made of it fails at once, and nothing leaves the machine.
BODY = image_body("http://127.0.0.1:9/front.jpg", "http://127.0.0.1:9/side.jpg")


def _through_starlette(app: Starlette) -> httpx.AsyncClient:
    """A client whose every request takes Starlette's way: the router, its middleware and the route wrappers."""
    stack = Starlette.build_middleware_stack(app)  # Starlette's own stack, without the hot dispatch inside

    async def plain(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app
        await stack(scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=plain), base_url="http://testserver")


def _comparable(answer: httpx.Response) -> tuple[int, Any, str | None]:
    body = answer.json() if answer.content else None
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in VOLATILE}
    return answer.status_code, body, answer.headers.get("content-type")


async def test_both_ways_give_the_same_answers(api: Api) -> None:
    key, other = await api.key(credits=5), await api.key("other", credits=5)
    task_id = (await api.submit(key, BODY)).json()["id"]
    await api.wait(key, task_id)  # terminal, so both ways read the same task
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/v1/tasks/{task_id}", {"headers": auth(key)}),
        ("GET", f"/v1/tasks/{task_id}", {"headers": auth(other)}),  # another account's task: 404
        ("GET", f"/v1/tasks/{task_id}", {}),  # no key: 401
        ("GET", "/v1/tasks/task-unified-1700000000-abcdefgh", {"headers": auth(key)}),
        ("GET", "/v1/tasks/not-a-task", {"headers": auth(key)}),
        ("GET", f"/v1/tasks/{task_id}/", {"headers": auth(key)}),  # not the route: Starlette's answer both ways
        ("HEAD", f"/v1/tasks/{task_id}", {"headers": auth(key)}),
        ("POST", "/v1/videos/generations", {"headers": auth(key), "json": BODY}),
        ("POST", "/v1/videos/generations", {"headers": auth(key), "json": {"model": "no-such-model"}}),
        ("POST", "/v1/videos/generations", {"headers": auth(key), "content": b"{not json"}),
        ("POST", "/v1/videos/generations", {"json": BODY}),
        ("PUT", "/v1/videos/generations", {"headers": auth(key)}),
    ]
    async with _through_starlette(api.app) as plain:
        for method, path, options in requests:
            short = await api.client.request(method, path, **options)
            usual = await plain.request(method, path, **options)
            assert _comparable(short) == _comparable(usual), (method, path)


def _scope(method: str, path: str, **changes: Any) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", **changes}


@pytest.mark.parametrize(
    ("method", "path", "changes"),
    [
        ("HEAD", "/v1/tasks/task-unified-1-abcdefgh", {}),
        ("POST", "/v1/tasks/task-unified-1-abcdefgh", {}),
        ("GET", "/v1/tasks/", {}),
        ("GET", "/v1/tasks", {}),
        ("GET", "/v1/tasks/a/cancel", {}),
        ("GET", "/v1/tasks/a/", {}),
        ("GET", "/v1/videos/generations", {}),
        ("POST", "/v1/videos/generations/", {}),
        ("POST", "/v1/videos/generations", {"root_path": "/mounted"}),
    ],
)
def test_anything_but_an_exact_match_goes_through_starlette(method: str, path: str, changes: dict[str, Any]) -> None:
    app = HotPathApp(submit=_never, get_task=_never)
    scope = _scope(method, path, **changes)
    assert app._hot_endpoint(scope) is None
    assert "path_params" not in scope


def test_an_exact_match_names_its_endpoint_and_task_id() -> None:
    app = HotPathApp(submit=_submit, get_task=_get_task)
    task_scope = _scope("GET", "/v1/tasks/task-unified-1-abcdefgh")
    assert app._hot_endpoint(task_scope) is _get_task
    assert task_scope["path_params"] == {"task_id": "task-unified-1-abcdefgh"}
    assert app._hot_endpoint(_scope("POST", "/v1/videos/generations")) is _submit


async def _never(request: Any) -> Any:
    raise AssertionError("not a hot route")


async def _submit(request: Any) -> Any:
    raise AssertionError("only compared by identity")


async def _get_task(request: Any) -> Any:
    raise AssertionError("only compared by identity")
