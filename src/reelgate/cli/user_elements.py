"""``reelgate element create | list | retrieve (get) | delete``: the caller's subject elements, through
``client.elements``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.panel import Panel
from rich.text import Text

from reelgate.cli.common import grid, when
from reelgate.cli.listing import Col
from reelgate.cli.user import (
    After,
    All,
    ApiKey,
    AsJson,
    BaseUrl,
    CallbackUrl,
    IdempotencyKey,
    Limit,
    Timeout,
    finish_wait,
    print_answer,
    print_page,
    session,
    short_time,
    submitted,
    wait_with_bar,
)
from reelgate_client import Element

_TAGS = ("trending", "character", "animal", "prop", "costume", "scene", "effect", "other")
TAG_NAMES = {name: f"o_{101 + i}" for i, name in enumerate(_TAGS)}  # --tag character means --tag o_102
TAG_IDS = {tag_id: name for name, tag_id in TAG_NAMES.items()}

_MEDIA = "file path, http(s) URL or Base64"
Name = Annotated[str, typer.Option("--name", help="Element name, 1-20 characters.")]
Description = Annotated[str, typer.Option("--description", help="Element description, 1-100 characters.")]
Front = Annotated[str | None, typer.Option("--front", help=f"Frontal image ({_MEDIA}).")]
Refer = Annotated[list[str] | None, typer.Option("--refer", help=f"Another view; 1-3 times ({_MEDIA}).")]
Video = Annotated[str | None, typer.Option("--video", help=f"One reference video instead of images ({_MEDIA}).")]
Tags = Annotated[
    list[str] | None, typer.Option("--tag", help="Tag o_101..o_108 or its name (character, prop, ...); repeatable.")
]
VoiceId = Annotated[str | None, typer.Option("--voice-id", help="Voice id for the element (with --video only).")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait with a progress bar, then print the element id.")]
ElementId = Annotated[str, typer.Argument(metavar="ELEMENT_ID", help="The element id.", show_default=False)]

# A narrow terminal leaves out the element's task, then its creation time; the id and the name stay.
LIST_COLUMNS = (
    Col("element_id", whole=True),
    Col("name", least=10),
    Col("tags", least=9),
    Col("created UTC", whole=True, drop=2),
    Col("task", whole=True, drop=1),
)


def _tags(values: list[str] | None) -> list[str]:
    return [TAG_NAMES.get(v.strip().lower(), v.strip()) for v in values or []]


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


def _list_row(e: Element) -> tuple[str, ...]:
    return e.element_id, e.element_name, ", ".join(TAG_IDS.get(t, t) for t in e.tags), short_time(e.created), e.task_id


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
    """Create an element from a frontal image plus 1-3 other views, or from one video (client.elements.create)."""
    with session(api_key, base_url, as_json=as_json) as client:
        task = client.elements.create(
            name=name, description=description, frontal=front, refer=refer or [], video=video, tags=_tags(tag),
            voice_id=voice_id, callback_url=callback_url, idempotency_key=idempotency_key,
        )  # fmt: skip
        if wait:
            finish_wait(wait_with_bar(client, task, timeout, f"element {name}"), as_json)
        else:
            submitted(task, as_json)


def element_list(
    limit: Limit = 20,
    after: After = None,
    walk: All = False,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """List your elements, newest first (client.elements.list)."""
    with session(api_key, base_url) as client:
        print_page(client.elements.list(limit=limit, after=after), walk, LIST_COLUMNS, _list_row, as_json)


def element_retrieve(
    element_id: ElementId, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None
) -> None:
    """Show one element (client.elements.retrieve; also: reelgate element get)."""
    with session(api_key, base_url) as client:
        element = client.elements.retrieve(element_id)
        print_answer(element.raw, as_json, element_panel(element))


def element_delete(
    element_id: ElementId, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None
) -> None:
    """Delete one element (client.elements.delete)."""
    with session(api_key, base_url) as client:
        gone = client.elements.delete(element_id)
        print_answer(gone.raw, as_json, f"deleted element {gone.id}")


def element_app() -> typer.Typer:
    element = typer.Typer(no_args_is_help=True, help="Create subject elements; list, show and delete them.")
    element.command("create")(element_create)
    element.command("list")(element_list)
    element.command("retrieve")(element_retrieve)
    element.command("get", help="The same as retrieve: show one element.")(element_retrieve)
    element.command("delete")(element_delete)
    return element
