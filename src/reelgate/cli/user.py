"""User commands for the API: ``reelgate element create|list|get|delete``, ``reelgate video create`` and
``reelgate task get|list|cancel|wait``.

Every command talks to a Reelgate server through ``reelgate_client``, with the key and address from
``--api-key``/``--base-url`` or ``REELGATE_API_KEY``/``REELGATE_BASE_URL`` (default http://127.0.0.1:8000).
Answers go to stdout (``--json`` prints the server's JSON, for scripts); progress bars, summaries and errors go to
stderr, so ``ID=$(reelgate element create ... --wait)`` captures just the element id (and ``reelgate video create
... --wait`` just the video URL). An error is one line on
stderr, such as ``error: model_params.element_name must be 1-20 characters (invalid_parameter, param ...)``.

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from reelgate.cli.common import grid, when
from reelgate_client import (
    DEFAULT_BASE_URL,
    APIConnectionError,
    APIStatusError,
    Element,
    MediaInputError,
    Reelgate,
    ReelgateError,
    Task,
    TaskFailedError,
    TaskStatus,
    VideoTask,
    WaitTimeoutError,
)

EXIT_API, EXIT_USAGE, EXIT_TASK_FAILED, EXIT_WAIT_TIMEOUT, EXIT_CONNECTION, EXIT_INTERRUPTED = 1, 2, 3, 4, 5, 130
_TAGS = ("trending", "character", "animal", "prop", "costume", "scene", "effect", "other")
TAG_NAMES = {name: f"o_{101 + i}" for i, name in enumerate(_TAGS)}  # --tag character means --tag o_102

ApiKey = Annotated[str | None, typer.Option("--api-key", envvar="REELGATE_API_KEY", show_default=False,
                                            help="API key (else REELGATE_API_KEY).")]  # fmt: skip
_BASE_URL_HELP = f"Server URL (else REELGATE_BASE_URL, else {DEFAULT_BASE_URL})."
BaseUrl = Annotated[str | None, typer.Option("--base-url", envvar="REELGATE_BASE_URL", show_default=False,
                                             help=_BASE_URL_HELP)]  # fmt: skip
AsJson = Annotated[bool, typer.Option("--json", help="Print the server's JSON on stdout (for scripts).")]
Timeout = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait before giving up (exit 4).")]
Limit = Annotated[int, typer.Option("--limit", min=1, max=100, help="Items per page.")]
After = Annotated[str | None, typer.Option("--after", help="Start after this id (the previous page's last id).")]
All = Annotated[bool, typer.Option("--all", help="Walk every page, not just the first.")]
TaskId = Annotated[str, typer.Argument(help="The task id (task-unified-...).")]
ElementId = Annotated[str, typer.Argument(help="The element id.")]

# --- errors, sessions and output -----------------------------------------------------------------------------------


def _stderr() -> Console:
    return Console(stderr=True)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _api_message(exc: APIStatusError) -> str:
    extra = [d["message"] for d in exc.details[1:] if isinstance(d.get("message"), str)]
    return f"{exc}; also: {'; '.join(extra)}" if extra else str(exc)


def _exit_for(exc: ReelgateError | ValueError, base_url: str) -> typer.Exit:
    if isinstance(exc, APIStatusError):
        return _fail(_api_message(exc), EXIT_API)
    if isinstance(exc, TaskFailedError):
        return _fail(str(exc), EXIT_TASK_FAILED)
    if isinstance(exc, WaitTimeoutError):
        return _fail(str(exc), EXIT_WAIT_TIMEOUT)
    if isinstance(exc, APIConnectionError):
        return _fail(f"{exc} (is the server running at {base_url}? see --base-url)", EXIT_CONNECTION)
    if isinstance(exc, MediaInputError | ValueError):
        return _fail(str(exc), EXIT_USAGE)
    return _fail(str(exc), EXIT_API)


@contextlib.contextmanager
def session(api_key: str | None, base_url: str | None, *, as_json: bool = False) -> Iterator[Reelgate]:
    """A client for one command; every client error becomes one line on stderr and its exit code."""
    if not api_key:
        raise _fail("no API key: pass --api-key or set REELGATE_API_KEY", EXIT_USAGE)
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
        raise _fail("interrupted; a submitted task keeps running (see: reelgate task list)", EXIT_INTERRUPTED) from None
    finally:
        client.close()


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


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


def element_panel(element: Element) -> Panel:
    table = grid()
    rows = [
        ("element_id", element.element_id),
        ("name", element.element_name),
        ("description", element.element_description),
        ("reference", element.reference_type),
        ("tags", ", ".join(element.tags)),
        ("frontal", element.frontal_image or ""),
        *(("refer", url) for url in element.refer_images),
        ("video", element.video_url or ""),
        ("voice", element.voice_id or ""),
        ("task", element.task_id),
        ("created", when(element.created)),
    ]
    for key, value in rows:
        if value:
            table.add_row(Text(key), Text(value))
    return Panel(table, title=Text(f"element {element.element_name}"), border_style="cyan", expand=False)


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
    with Progress(*columns, console=console or _stderr()) as progress:
        bar = progress.add_task(label, total=100, status="submitted")

        def update(task: Task) -> None:
            progress.update(bar, completed=task.progress, status=task.status)

        yield update


def _wait(client: Reelgate, task: Task, timeout: float, label: str) -> Task:
    with progress_bar(label) as on_progress:
        return client.tasks.wait(task, timeout=timeout, on_progress=on_progress)


def _finish_wait(done: Task, as_json: bool) -> None:
    """After a successful wait: JSON, or the summary on stderr and on stdout the element id, else the result URLs
    (one a line), else the task id."""
    if as_json:
        print_json(done.raw)
        return
    _stderr().print(task_panel(done))
    if done.result is not None:
        typer.echo(done.result.element_id)
    else:
        typer.echo("\n".join(done.results) or done.id)


# --- element -------------------------------------------------------------------------------------------------------

_MEDIA = "file path, http(s) URL or Base64"
Name = Annotated[str, typer.Option("--name", help="Element name, 1-20 characters.")]
Description = Annotated[str, typer.Option("--description", help="Element description, 1-100 characters.")]
Front = Annotated[str | None, typer.Option("--front", help=f"Frontal image ({_MEDIA}).")]
Refer = Annotated[list[str] | None, typer.Option("--refer", help=f"Another view; 1-3 times ({_MEDIA}).")]
Video = Annotated[str | None, typer.Option("--video", help=f"One reference video instead of images ({_MEDIA}).")]
Tags = Annotated[
    list[str] | None, typer.Option("--tag", help="Tag o_101..o_108 or its name (character, prop, ...); repeatable.")
]
VoiceId = Annotated[str | None, typer.Option("--voice-id", help="Voice id for the element.")]
CallbackUrl = Annotated[str | None, typer.Option("--callback-url", help="HTTPS URL told when the task ends.")]
IdempotencyKey = Annotated[
    str | None, typer.Option("--idempotency-key", help="Reuse it to retry a create safely (default: a fresh one).")
]
Wait = Annotated[bool, typer.Option("--wait", help="Wait with a progress bar, then print the element id.")]
StatusFilter = Annotated[str | None, typer.Option("--status", help="pending, processing, completed or failed.")]
ModelFilter = Annotated[str | None, typer.Option("--model", help="Only tasks of this model.")]


def _tags(values: list[str] | None) -> list[str]:
    return [TAG_NAMES.get(v.strip().lower(), v.strip()) for v in values or []]


def _table(*headers: str) -> Table:
    """A plain table whose id columns are never cut, so an id can be copied into the next command."""
    widths = {"task": 32, "element_id": 16, "result": 16, "created (UTC)": 11}
    columns = [Column(h, no_wrap=h in widths, min_width=widths.get(h)) for h in headers]
    return Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False)


def _short(seconds: int) -> str:
    return time.strftime("%m-%d %H:%M", time.gmtime(seconds))


def _print_list(raws: list[dict[str, Any]], table: Table, more: str | None, as_json: bool) -> None:
    """A list answer: the list shape as JSON, or the table (and how to get the next page) for people."""
    if as_json:
        last_id = raws[-1].get("id") if raws else None
        print_json({"object": "list", "data": raws, "has_more": more is not None, "last_id": last_id})
        return
    Console().print(table)
    if more is not None:
        typer.echo(f"more: --after {more} (or --all)", err=True)


def element_create(
    name: Name,
    description: Description,
    front: Front = None,
    refer: Refer = None,
    video: Video = None,
    tag: Tags = None,
    voice_id: VoiceId = None,
    callback_url: CallbackUrl = None,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = False,
    timeout: Timeout = 600.0,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Create an element from a frontal image plus 1-3 other views (or from one video)."""
    with session(api_key, base_url, as_json=as_json) as client:
        task = client.elements.create(
            name=name, description=description, frontal=front, refer=refer or [], video=video, tags=_tags(tag),
            voice_id=voice_id, callback_url=callback_url, idempotency_key=idempotency_key,
        )  # fmt: skip
        if wait:
            _finish_wait(_wait(client, task, timeout, f"element {name}"), as_json)
        elif as_json:
            print_json(task.raw)
        else:
            typer.echo(f"submitted {task.id}; follow it with: reelgate task wait {task.id}", err=True)
            typer.echo(task.id)


def element_list(
    limit: Limit = 20,
    after: After = None,
    walk: All = False,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """List your elements, newest first."""
    with session(api_key, base_url) as client:
        page = client.elements.list(limit=limit, after=after)
        items = list(page) if walk else page.data
        table = _table("element_id", "name", "tags", "created (UTC)", "task")
        for e in items:
            table.add_row(e.element_id, e.element_name, ", ".join(e.tags), _short(e.created), e.task_id)
        more = page.last_id if page.has_more and not walk else None
        _print_list([e.raw for e in items], table, more, as_json)


def element_get(
    element_id: ElementId, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None
) -> None:
    """Show one element."""
    with session(api_key, base_url) as client:
        element = client.elements.retrieve(element_id)
        if as_json:
            print_json(element.raw)
        else:
            Console().print(element_panel(element))


def element_delete(
    element_id: ElementId, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None
) -> None:
    """Delete one element."""
    with session(api_key, base_url) as client:
        gone = client.elements.delete(element_id)
        if as_json:
            print_json(gone.raw)
        else:
            typer.echo(f"deleted element {gone.id}")


# --- video ---------------------------------------------------------------------------------------------------------

_URL = "an http(s) URL"
VideoModel = Annotated[str, typer.Option("--model", help="A video model, e.g. kling-o3-text-to-video.")]
Prompt = Annotated[str | None, typer.Option("--prompt", help="What happens; <<<element_1>>> is the first --element.")]
Elements = Annotated[list[str] | None, typer.Option("--element", help="An element id to use; repeatable, in order.")]
Duration = Annotated[int | None, typer.Option("--duration", help="Seconds (the model's default when omitted).")]
Quality = Annotated[str | None, typer.Option("--quality", help="720p, 1080p or 4k (per model).")]
Sound = Annotated[str | None, typer.Option("--sound", help="on or off.")]
AspectRatio = Annotated[str | None, typer.Option("--aspect-ratio", help="16:9, 9:16 or 1:1 (per model).")]
NegativePrompt = Annotated[str | None, typer.Option("--negative-prompt", help="What to avoid.")]
ImageStart = Annotated[str | None, typer.Option("--image-start", help=f"First frame ({_URL}).")]
ImageEnd = Annotated[str | None, typer.Option("--image-end", help=f"Last frame ({_URL}).")]
Images = Annotated[
    list[str] | None, typer.Option("--image", help=f"A reference image, image_urls ({_URL}); repeatable.")
]
VideoUrl = Annotated[str | None, typer.Option("--video-url", help=f"The input video, video_url ({_URL}).")]
MotionVideos = Annotated[
    list[str] | None, typer.Option("--motion-video", help=f"video_urls, the motion to follow ({_URL}); repeatable.")
]
KeepSound = Annotated[bool, typer.Option("--keep-original-sound", help="Keep the input video's sound.")]
Watermark = Annotated[bool, typer.Option("--watermark", help="Also make a watermarked variant.")]
Params = Annotated[
    list[str] | None,
    typer.Option("--param", help="A model_params option KEY=VALUE (VALUE as JSON if it parses); repeatable."),
]
WaitVideo = Annotated[bool, typer.Option("--wait", help="Wait with a progress bar, then print the video URL.")]
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Wait, then save the first result to this file (implies --wait).")
]
VideoTimeout = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait before giving up (exit 4).")]


def _model_params(values: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        try:
            params[key.strip()] = json.loads(raw)
        except ValueError:
            params[key.strip()] = raw
    return params


def _save(client: Reelgate, done: VideoTask, output: Path) -> None:
    """Download the first result to ``output``, with a spinner; a file that cannot be written is a usage error."""
    try:
        with _stderr().status(f"downloading {done.video_url} to {output}"):
            saved = client.videos.download(done, output)
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_USAGE) from None
    typer.echo(f"saved {saved} ({saved.stat().st_size / 1e6:.1f} MB)", err=True)


def video_create(
    model: VideoModel,
    prompt: Prompt = None,
    element: Elements = None,
    duration: Duration = None,
    quality: Quality = None,
    sound: Sound = None,
    aspect_ratio: AspectRatio = None,
    negative_prompt: NegativePrompt = None,
    image_start: ImageStart = None,
    image_end: ImageEnd = None,
    image: Images = None,
    video_url: VideoUrl = None,
    motion_video: MotionVideos = None,
    keep_original_sound: KeepSound = False,
    watermark: Watermark = False,
    param: Params = None,
    callback_url: CallbackUrl = None,
    idempotency_key: IdempotencyKey = None,
    wait: WaitVideo = False,
    output: Output = None,
    timeout: VideoTimeout = 1800.0,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Generate a video with your elements (a Kling video model; the server needs an upstream Kling channel)."""
    model_params = _model_params(param)
    with session(api_key, base_url, as_json=as_json) as client:
        task = client.videos.create(
            model=model, prompt=prompt, elements=element or [], duration=duration, quality=quality, sound=sound,
            aspect_ratio=aspect_ratio, negative_prompt=negative_prompt, image_start=image_start, image_end=image_end,
            image_urls=image or [], video_url=video_url, video_urls=motion_video or [],
            keep_original_sound=keep_original_sound or None, watermark=watermark or None, model_params=model_params,
            callback_url=callback_url, idempotency_key=idempotency_key,
        )  # fmt: skip
        if not (wait or output):
            if as_json:
                print_json(task.raw)
            else:
                typer.echo(f"submitted {task.id}; follow it with: reelgate task wait {task.id}", err=True)
                typer.echo(task.id)
            return
        done = VideoTask.from_task(_wait(client, task, timeout, f"video {model}"))
        _finish_wait(done, as_json)
        if output is not None:
            _save(client, done, output)


# --- task ----------------------------------------------------------------------------------------------------------


def _status(value: str | None) -> TaskStatus | None:
    statuses: tuple[TaskStatus, ...] = ("pending", "processing", "completed", "failed")
    if value is None:
        return None
    for status in statuses:
        if value == status:
            return status
    raise typer.BadParameter(f"must be one of {', '.join(statuses)}", param_hint="--status")


def task_get(task_id: TaskId, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """Show one task."""
    with session(api_key, base_url) as client:
        task = client.tasks.retrieve(task_id)
        if as_json:
            print_json(task.raw)
        else:
            Console().print(task_panel(task))


def task_list(
    status: StatusFilter = None,
    model: ModelFilter = None,
    limit: Limit = 20,
    after: After = None,
    walk: All = False,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """List your tasks, newest first."""
    with session(api_key, base_url) as client:
        page = client.tasks.list(status=_status(status), model=model, limit=limit, after=after)
        items = list(page) if walk else page.data
        table = _table("task", "status", "created (UTC)", "result")
        for t in items:
            outcome = t.result.element_id if t.result else (t.results[0] if t.results else "")
            outcome = outcome or (t.error.code if t.error else "")
            status = t.status if t.done else f"{t.status} {t.progress}%"
            table.add_row(t.id, status, _short(t.created), outcome)
        more = page.last_id if page.has_more and not walk else None
        _print_list([t.raw for t in items], table, more, as_json)


def task_cancel(task_id: TaskId, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """Cancel a pending or processing task; its reserved credits are refunded."""
    with session(api_key, base_url) as client:
        task = client.tasks.cancel(task_id)
        if as_json:
            print_json(task.raw)
        else:
            typer.echo(f"cancelled {task.id}; its credits were refunded")


def task_wait(
    task_id: TaskId,
    timeout: Timeout = 600.0,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Wait for a task with a progress bar, then print its element id (exit 3 if it fails, 4 on timeout)."""
    with session(api_key, base_url, as_json=as_json) as client:
        _finish_wait(_wait(client, client.tasks.retrieve(task_id), timeout, task_id), as_json)


# --- registration --------------------------------------------------------------------------------------------------


def user_apps() -> dict[str, typer.Typer]:
    element = typer.Typer(no_args_is_help=True, help="Create subject elements; list, show and delete them.")
    element.command("create")(element_create)
    element.command("list")(element_list)
    element.command("get")(element_get)
    element.command("delete")(element_delete)
    video = typer.Typer(no_args_is_help=True, help="Generate videos that use your elements.")
    video.command("create")(video_create)
    task = typer.Typer(no_args_is_help=True, help="Show, list, cancel and wait for your tasks.")
    task.command("get")(task_get)
    task.command("list")(task_list)
    task.command("cancel")(task_cancel)
    task.command("wait")(task_wait)
    return {"element": element, "video": video, "task": task}
