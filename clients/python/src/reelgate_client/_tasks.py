"""``client.tasks``: retrieve, list (cursor pages), cancel, callback log and resend, and wait with back-off; sync
and async."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

from reelgate_client._base import AsyncAPIClient, SyncAPIClient
from reelgate_client._pages import AsyncPage, AsyncPaginator, SyncPage, page_parts
from reelgate_client._poll import DEFAULT_WAIT_TIMEOUT, Poller, ProgressCallback
from reelgate_client._types import CallbackLog, Task, TaskStatus
from reelgate_client._webhook_types import CallbackDelivery, TaskErrorCode

TaskRef = str | Task
RESEND = "/callbacks/resend"


def task_path(task: TaskRef, suffix: str = "") -> str:
    task_id = task.id if isinstance(task, Task) else task
    if not task_id:
        raise ValueError("task_id must not be empty")
    return f"/v1/tasks/{quote(task_id, safe='')}{suffix}"


class Tasks:
    """Blocking access to the caller's tasks."""

    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def retrieve(self, task: TaskRef) -> Task:
        return Task.from_dict(self._client.request("GET", task_path(task)))

    def list(
        self,
        *,
        status: TaskStatus | None = None,
        model: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        error_code: TaskErrorCode | None = None,
    ) -> SyncPage[Task]:
        """Newest first. Iterate the page to walk every task across pages, or use ``.data`` for this page only.
        ``error_code`` keeps the failed tasks with that code (``request_cancelled``: the ones you cancelled)."""
        params: dict[str, str | int | None] = {"status": status, "model": model, "limit": limit, "after": after,
                                               "error_code": error_code}  # fmt: skip
        items, has_more, last_id, raw = page_parts(self._client.request("GET", "/v1/tasks", params=params))
        return SyncPage(
            [Task.from_dict(i) for i in items],
            has_more,
            last_id,
            raw,
            fetch=lambda cursor: self.list(
                status=status, model=model, limit=limit, after=cursor, error_code=error_code
            ),
        )

    def cancel(self, task: TaskRef) -> Task:
        """Cancel while ``can_cancel``; the task becomes failed with ``request_cancelled``. Otherwise ConflictError."""
        return Task.from_dict(self._client.request("POST", task_path(task, "/cancel")))

    def callbacks(self, task: TaskRef) -> CallbackLog:
        return CallbackLog.from_dict(self._client.request("GET", task_path(task, "/callbacks")))

    def resend_callback(self, task: TaskRef) -> CallbackDelivery:
        """Send a finished task's dead callback again: a new round of attempts, same webhook-id (``status`` is
        ``pending`` again). ConflictError when it is still pending (``callback_pending``: also what a request retried
        after a lost answer sees) or already delivered; RateLimitError past 5 a minute per account."""
        return CallbackDelivery.from_dict(self._client.request("POST", task_path(task, RESEND)))

    def wait(
        self,
        task: TaskRef,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_progress: ProgressCallback | None = None,
    ) -> Task:
        """Poll until the task completes and return it; ``on_progress(task)`` hears every change of status or progress.

        Polls after 0.25 s, then 1.5x longer each time up to 5 s, and never slower than a tenth of the task's
        ``estimated_time``. Raises TaskFailedError when the task fails (a cancelled task fails with
        ``request_cancelled``) and WaitTimeoutError after ``timeout`` seconds (None: no limit).
        """
        poller = Poller(timeout, on_progress)
        while True:
            current = self.retrieve(task)
            delay = poller.step(current)
            if delay is None:
                return current
            time.sleep(delay)


class AsyncTasks:
    """The async twin of Tasks."""

    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def retrieve(self, task: TaskRef) -> Task:
        return Task.from_dict(await self._client.request("GET", task_path(task)))

    def list(
        self,
        *,
        status: TaskStatus | None = None,
        model: str | None = None,
        limit: int | None = None,
        after: str | None = None,
        error_code: TaskErrorCode | None = None,
    ) -> AsyncPaginator[Task]:
        """``await`` it for the first page, or ``async for task in client.tasks.list()`` for every task."""

        async def page(cursor: str | None) -> AsyncPage[Task]:
            params: dict[str, str | int | None] = {"status": status, "model": model, "limit": limit, "after": cursor,
                                                   "error_code": error_code}  # fmt: skip
            items, has_more, last_id, raw = page_parts(await self._client.request("GET", "/v1/tasks", params=params))
            return AsyncPage([Task.from_dict(i) for i in items], has_more, last_id, raw, fetch=page)

        return AsyncPaginator(lambda: page(after))

    async def cancel(self, task: TaskRef) -> Task:
        return Task.from_dict(await self._client.request("POST", task_path(task, "/cancel")))

    async def callbacks(self, task: TaskRef) -> CallbackLog:
        return CallbackLog.from_dict(await self._client.request("GET", task_path(task, "/callbacks")))

    async def resend_callback(self, task: TaskRef) -> CallbackDelivery:
        """Send a finished task's dead callback again; see Tasks.resend_callback."""
        return CallbackDelivery.from_dict(await self._client.request("POST", task_path(task, RESEND)))

    async def wait(
        self,
        task: TaskRef,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_progress: ProgressCallback | None = None,
    ) -> Task:
        """Poll until the task completes; see Tasks.wait."""
        poller = Poller(timeout, on_progress)
        while True:
            current = await self.retrieve(task)
            delay = poller.step(current)
            if delay is None:
                return current
            await asyncio.sleep(delay)
