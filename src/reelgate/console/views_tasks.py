"""Tasks: search every account's tasks, and one task's page with its whole timeline and the operator's actions
(cancel it; send its dead callback again)."""

from __future__ import annotations

import calendar
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.console.context import Console
from reelgate.console.security import actor, flash, redirect, signed_in
from reelgate.console_ops import Actor
from reelgate.domain import STATUSES, is_task_id
from reelgate.errors import ApiError, InvalidRequest
from reelgate.store.console_reads import TaskFilter
from reelgate.store.db import Row

FIELDS = ("id", "account", "status", "error_code", "model", "since", "until", "callback", "before")


def utc_seconds(text: str, name: str) -> float | None:
    """A ``datetime-local`` value ("2025-01-31T14:05"), read as UTC; None when empty."""
    if not text:
        return None
    for layout in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return float(calendar.timegm(time.strptime(text, layout)))
        except ValueError:
            continue
    raise InvalidRequest(f"{name} must be a date and time like 2025-01-31T14:05 (UTC)", param=name)


async def task_filter(console: Console, q: dict[str, str]) -> TaskFilter:
    """The search form's fields as a filter; a refusal names the field (an unknown account, a malformed time)."""
    account_id = await console.oversight.account_id(q["account"]) if q["account"] else None
    return TaskFilter(account_id=account_id, status=q["status"] if q["status"] in STATUSES else "", model=q["model"],
                      error_code=q["error_code"], since=utc_seconds(q["since"], "since"),
                      until=utc_seconds(q["until"], "until"), before=q["before"],
                      dead_callback=q["callback"] == "dead")  # fmt: skip


class TaskViews:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.pages, self.oversight, self.actions = console.pages, console.oversight, console.actions

    async def search(self, request: Request) -> Response:
        q = {k: request.query_params.get(k, "").strip() for k in FIELDS}
        if q["id"]:
            if is_task_id(q["id"]):
                return redirect(f"/console/tasks/{q['id']}")
            hint = f"{q['id'][:80]!r} is not a task id (task-unified-<seconds>-<8 characters>)"
            return self.results(request, q, [], hint)
        try:
            f = await task_filter(self.console, q)
        except ApiError as exc:
            return self.results(request, q, [], exc.message)
        return self.results(request, q, await self.oversight.search_tasks(f), "")

    def results(self, request: Request, q: dict[str, str], rows: list[Row], error: str) -> Response:
        models = sorted(self.oversight.service.catalog)
        return self.pages.render(request, "tasks.html", title="Tasks", q=q, rows=rows, error=error, statuses=STATUSES,
                                 models=models, status=400 if error else 200)  # fmt: skip

    async def task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        try:
            page = await self.oversight.task(task_id)
        except ApiError as exc:
            return flash(redirect("/console/tasks"), request, exc.message, "error")
        audit = await self.console.admins.audit_log(target=f"task:{task_id}", limit=20)
        return self.pages.render(request, "task.html", title=f"Task {task_id}", p=page, t=page.task, h=page.history,
                                 audit=audit)  # fmt: skip

    async def act(self, request: Request, work: Callable[[Actor, str], Awaitable[object]], done: str) -> Response:
        task_id = request.path_params["task_id"]
        back = redirect(f"/console/tasks/{task_id}")
        try:
            await work(actor(request), task_id)
        except ApiError as exc:
            return flash(back, request, exc.message, "error")
        return flash(back, request, done)

    async def cancel(self, request: Request) -> Response:
        return await self.act(request, self.actions.cancel_task, "Cancelled: the reserved credits were released.")

    async def resend(self, request: Request) -> Response:
        return await self.act(request, self.actions.resend_callback,
                              "Callback queued again: a new round of attempts starts now.")  # fmt: skip


def routes(console: Console) -> list[Route]:
    v, guard = TaskViews(console), console.admins
    return [
        Route("/tasks", signed_in(guard, v.search), methods=["GET"]),
        Route("/tasks/{task_id}", signed_in(guard, v.task), methods=["GET"]),
        Route("/tasks/{task_id}/cancel", signed_in(guard, v.cancel), methods=["POST"]),
        Route("/tasks/{task_id}/resend-callback", signed_in(guard, v.resend), methods=["POST"]),
    ]
