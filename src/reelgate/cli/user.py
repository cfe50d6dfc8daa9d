"""What the API user's commands share: their options, one client session per command, errors and exit codes, and
how tasks, waits and lists look. The commands themselves are in ``user_elements`` (``reelgate element``),
``user_videos`` (``reelgate video``), ``user_tasks`` (``reelgate task``), ``user_account`` (``reelgate credits``
alone and ``reelgate model list``), ``files_user`` (``reelgate file``) and ``webhooks_user`` (``reelgate webhook``
and ``reelgate task resend-callback``).

Every command talks to a Reelgate server through ``reelgate_client``, with the key and address from
``--api-key``/``--base-url`` or ``REELGATE_API_KEY``/``REELGATE_BASE_URL`` (default http://127.0.0.1:8000), and is
named after the client method it calls (``reelgate task retrieve`` is ``client.tasks.retrieve``; ``get`` is the same
command under its shorter name). Answers go to stdout (``--json``, given to the command or to ``reelgate`` itself,
prints the server's JSON, for scripts); progress bars, summaries and errors go to stderr, so
``ID=$(reelgate element create ... --wait)`` captures just the element id (and ``reelgate video create ... --wait``
just the video URL). An error is one line on stderr, such as ``error: model_params.element_name must be 1-20
characters (invalid_parameter, param ...)``.

Exit codes:
    0  success
    1  API error: the server refused the request (invalid field, unknown id, no credits, bad key, conflict, ...)
    2  usage error: a bad option, no API key, a media file that cannot be read, or an --output that cannot be written
    3  task failed: the task ended as failed (or was cancelled) while waiting for it
    4  wait timeout: the task was still running when --timeout ran out
    5  connection error: the server could not be reached, or it did not answer in time
  130  interrupted (Ctrl-C); a submitted task keeps running on the server
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, Protocol, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from reelgate.cli.common import AsJson as AsJson  # re-exported: every user command takes it from here
from reelgate.cli.common import grid, when
from reelgate.cli.listing import Col, fitted
from reelgate_client import (
    DEFAULT_BASE_URL,
    APIConnectionError,
    APIStatusError,
    MediaInputError,
    Reelgate,
    ReelgateError,
    SyncPage,
    Task,
    TaskFailedError,
    WaitTimeoutError,
)

EXIT_API, EXIT_USAGE, EXIT_TASK_FAILED, EXIT_WAIT_TIMEOUT, EXIT_CONNECTION, EXIT_INTERRUPTED = 1, 2, 3, 4, 5, 130

ApiKey = Annotated[str | None, typer.Option("--api-key", envvar="REELGATE_API_KEY", show_default=False,
                                            help="API key (else REELGATE_API_KEY).")]  # fmt: skip
_BASE_URL_HELP = f"Server URL (else REELGATE_BASE_URL, else {DEFAULT_BASE_URL})."
BaseUrl = Annotated[str | None, typer.Option("--base-url", envvar="REELGATE_BASE_URL", show_default=False,
                                             help=_BASE_URL_HELP)]  # fmt: skip
Timeout = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait before giving up (exit 4).")]
Limit = Annotated[int, typer.Option("--limit", min=1, max=100, help="Items per page.")]
After = Annotated[str | None, typer.Option("--after", help="Start after this id (the previous page's last id).")]
All = Annotated[bool, typer.Option("--all", help="Walk every page, not just the first.")]
TaskId = Annotated[str, typer.Argument(metavar="TASK_ID", help="The task id (task-unified-...).", show_default=False)]
CallbackUrl = Annotated[str | None, typer.Option("--callback-url", help="HTTPS URL told when the task ends.")]
IdempotencyKey = Annotated[
    str | None, typer.Option("--idempotency-key", help="Reuse it to retry a create safely (default: a fresh one).")
]

# --- errors and sessions -------------------------------------------------------------------------------------------


def stderr_console() -> Console:
    return Console(stderr=True)


def fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _api_message(exc: APIStatusError) -> str:
    extra = [d["message"] for d in exc.details[1:] if isinstance(d.get("message"), str)]
    return f"{exc}; also: {'; '.join(extra)}" if extra else str(exc)


def _exit_for(exc: ReelgateError | ValueError, base_url: str) -> typer.Exit:
    if isinstance(exc, APIStatusError):
        return fail(_api_message(exc), EXIT_API)
    if isinstance(exc, TaskFailedError):
        return fail(str(exc), EXIT_TASK_FAILED)
    if isinstance(exc, WaitTimeoutError):
        return fail(str(exc), EXIT_WAIT_TIMEOUT)
    if isinstance(exc, APIConnectionError):
        return fail(f"{exc} (is the server running at {base_url}? see --base-url)", EXIT_CONNECTION)
    if isinstance(exc, MediaInputError | ValueError):
        return fail(str(exc), EXIT_USAGE)
    return fail(str(exc), EXIT_API)


@contextlib.contextmanager
def session(api_key: str | None, base_url: str | None, *, as_json: bool = False, hint: str = "") -> Iterator[Reelgate]:
    """A client for one command; every client error becomes one line on stderr and its exit code. ``hint`` follows
    the no-key error (where an operator may have meant another command)."""
    if not api_key:
        raise fail(f"no API key: pass --api-key or set REELGATE_API_KEY{hint}", EXIT_USAGE)
    client = Reelgate(api_key=api_key, base_url=base_url)
    try:
        yield client
    except (TaskFailedError, WaitTimeoutError) as exc:
        if as_json:  # scripts still get the task as it last stood
            print_json(exc.task.raw)
        raise _exit_for(exc, client.base_url) from None
    except (ReelgateError, ValueError) as exc:
        raise _exit_for(exc, client.base_url) from None
    except KeyboardInterrupt:
        raise fail("interrupted; a submitted task keeps running (see: reelgate task list)", EXIT_INTERRUPTED) from None
    finally:
        client.close()


# --- output --------------------------------------------------------------------------------------------------------


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_answer(raw: Any, as_json: bool, shown: RenderableType, note: str = "") -> None:
    """One answer on stdout: ``raw`` as JSON for scripts, else ``shown`` for people (a line of text, printed as it
    is, or a panel or grid) after ``note``, if any, on stderr (so ``X=$(reelgate ...)`` captures ``shown`` alone)."""
    if as_json:
        print_json(raw)
        return
    if note:
        typer.echo(note, err=True)
    if isinstance(shown, str):
        typer.echo(shown)  # not through Rich: an id or a URL must not be wrapped, highlighted or read as markup
    else:
        Console().print(shown)


def short_time(seconds: int) -> str:
    """A list's time: month, day, hours and minutes (UTC)."""
    return time.strftime("%m-%d %H:%M", time.gmtime(seconds))


def print_table(cols: Sequence[Col], rows: Sequence[Sequence[str]]) -> None:
    """A table on stdout that fits the terminal, its ids and times whole (``listing.fitted``)."""
    console = Console()
    console.print(fitted(cols, rows, console.width))


def print_list(
    raws: list[dict[str, Any]], cols: Sequence[Col], rows: Sequence[Sequence[str]], more: str | None, as_json: bool
) -> None:
    """A list answer: the list shape as JSON, or a table that fits the terminal (and how to get the next page)."""
    if as_json:
        last_id = raws[-1].get("id") if raws else None
        print_json({"object": "list", "data": raws, "has_more": more is not None, "last_id": last_id})
        return
    print_table(cols, rows)
    if more is not None:
        typer.echo(f"more: --after {more} (or --all)", err=True)


class HasRaw(Protocol):
    """An answer of the client's that keeps the server's JSON."""

    @property
    def raw(self) -> dict[str, Any]: ...


Item = TypeVar("Item", bound=HasRaw)


def print_page(
    page: SyncPage[Item], walk: bool, cols: Sequence[Col], row: Callable[[Item], Sequence[str]], as_json: bool
) -> None:
    """A cursor page as a list answer (``print_list``); with ``walk`` (--all), fetching and showing every page after
    it too, so it runs inside the command's session."""
    items = list(page) if walk else page.data
    more = page.last_id if page.has_more and not walk else None
    print_list([item.raw for item in items], cols, [row(item) for item in items], more, as_json)


def task_panel(task: Task) -> Panel:
    """A task at a glance: status, progress, cost, and the element (or the error)."""
    table = grid()
    rows = [
        ("task", task.id),
        ("model", task.model),
        ("status", f"{task.status} ({task.progress}%)"),
        ("created", when(task.created)),
    ]
    if task.usage is not None:
        charged = "pending" if task.usage.credits_charged is None else f"{task.usage.credits_charged:g}"
        rows.append(("credits", f"reserved {task.usage.credits_reserved:g}, charged {charged}"))
    if task.result is not None:
        rows += [
            ("element_id", task.result.element_id),
            ("name", task.result.element_name),
            ("reference", task.result.reference_type),
        ]
    rows += [("result", url) for url in task.results]
    if task.error is not None:
        rows.append(("error", f"{task.error.code}: {task.error.message}"))
    for key, value in rows:
        table.add_row(Text(key), Text(value))
    style = {"completed": "green", "failed": "red"}.get(task.status, "yellow")
    return Panel(table, title=Text(f"task {task.status}"), border_style=style, expand=False)


@contextlib.contextmanager
def progress_bar(label: str, console: Console | None = None) -> Iterator[Callable[[Task], None]]:
    """A live progress bar on stderr; yields the ``on_progress`` callback for ``tasks.wait``."""
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console or stderr_console()) as progress:
        bar = progress.add_task(label, total=100, status="submitted")

        def update(task: Task) -> None:
            progress.update(bar, completed=task.progress, status=task.status)

        yield update


def wait_with_bar(client: Reelgate, task: Task | str, timeout: float, label: str) -> Task:
    with progress_bar(label) as on_progress:
        return client.tasks.wait(task, timeout=timeout, on_progress=on_progress)


def finish_wait(done: Task, as_json: bool) -> None:
    """After a successful wait: JSON, or the summary on stderr and on stdout the element id, else the result URLs
    (one a line), else the task id."""
    if as_json:
        print_json(done.raw)
        return
    stderr_console().print(task_panel(done))
    if done.result is not None:
        typer.echo(done.result.element_id)
    else:
        typer.echo("\n".join(done.results) or done.id)


def submitted(task: Task, as_json: bool) -> None:
    """A create answered without waiting: the task as JSON, or its id on stdout and how to follow it on stderr."""
    print_answer(task.raw, as_json, task.id, note=f"submitted {task.id}; follow it with: reelgate task wait {task.id}")
