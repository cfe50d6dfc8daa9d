"""``reelgate task retrieve (get) | list | cancel | wait``: the caller's tasks, through ``client.tasks``."""

from __future__ import annotations

from typing import Annotated, get_args

import typer

from reelgate.cli.listing import Col
from reelgate.cli.user import (
    After,
    All,
    ApiKey,
    AsJson,
    BaseUrl,
    Limit,
    TaskId,
    Timeout,
    finish_wait,
    print_answer,
    print_page,
    session,
    short_time,
    task_panel,
    wait_with_bar,
)
from reelgate_client import Task, TaskErrorCode, TaskStatus

StatusFilter = Annotated[str | None, typer.Option("--status", help="pending, processing, completed or failed.")]
ModelFilter = Annotated[str | None, typer.Option("--model", help="Only tasks of this model.")]
ErrorCodeFilter = Annotated[
    str | None, typer.Option("--error-code", help="Only failed tasks with this error code, e.g. request_cancelled.")
]

# The id and the status are never cut; the result (an element id, a video URL, an error code) folds; a terminal
# narrower than 80 columns leaves out the creation time.
LIST_COLUMNS = (
    Col("task", whole=True),
    Col("status", whole=True),
    Col("created UTC", whole=True, drop=1),
    Col("result", least=16),
)


def _status(value: str | None) -> TaskStatus | None:
    statuses: tuple[TaskStatus, ...] = ("pending", "processing", "completed", "failed")
    if value is None:
        return None
    for status in statuses:
        if value == status:
            return status
    raise typer.BadParameter(f"must be one of {', '.join(statuses)}", param_hint="--status")


def _error_code(value: str | None) -> TaskErrorCode | None:
    if value is None:
        return None
    codes: tuple[TaskErrorCode, ...] = get_args(TaskErrorCode)
    for code in codes:
        if value == code:
            return code
    raise typer.BadParameter(f"must be one of {', '.join(codes)}", param_hint="--error-code")


def _list_row(t: Task) -> tuple[str, ...]:
    outcome = t.result.element_id if t.result else (t.results[0] if t.results else "")
    outcome = outcome or (t.error.code if t.error else "")
    shown = t.status if t.done else f"{t.status} {t.progress}%"
    return t.id, shown, short_time(t.created), outcome


def task_retrieve(task_id: TaskId, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """Show one task (client.tasks.retrieve; also: reelgate task get)."""
    with session(api_key, base_url) as client:
        task = client.tasks.retrieve(task_id)
        print_answer(task.raw, as_json, task_panel(task))


def task_list(
    status: StatusFilter = None,
    model: ModelFilter = None,
    error_code: ErrorCodeFilter = None,
    limit: Limit = 20,
    after: After = None,
    walk: All = False,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """List your tasks, newest first (client.tasks.list)."""
    with session(api_key, base_url) as client:
        page = client.tasks.list(
            status=_status(status), model=model, error_code=_error_code(error_code), limit=limit, after=after
        )
        print_page(page, walk, LIST_COLUMNS, _list_row, as_json)


def task_cancel(task_id: TaskId, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """Cancel a pending or processing task; its reserved credits are refunded (client.tasks.cancel)."""
    with session(api_key, base_url) as client:
        task = client.tasks.cancel(task_id)
        print_answer(task.raw, as_json, f"cancelled {task.id}; its credits were refunded")


def task_wait(
    task_id: TaskId,
    timeout: Timeout = 600.0,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Wait for a task, then print its element id or result URLs (client.tasks.wait).

    A progress bar goes to stderr. Exit 3 if the task fails (or is cancelled), 4 if --timeout runs out first.
    """
    with session(api_key, base_url, as_json=as_json) as client:
        finish_wait(wait_with_bar(client, task_id, timeout, task_id), as_json)


def task_app() -> typer.Typer:
    task = typer.Typer(no_args_is_help=True, help="Show, list, cancel and wait for your tasks.")
    task.command("retrieve")(task_retrieve)
    task.command("get", help="The same as retrieve: show one task.")(task_retrieve)
    task.command("list")(task_list)
    task.command("cancel")(task_cancel)
    task.command("wait")(task_wait)
    return task
