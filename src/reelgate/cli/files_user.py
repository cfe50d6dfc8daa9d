"""``reelgate file upload PATH | list | delete FILE_ID | quota``: the caller's uploaded images, through
``client.files`` (docs/files.md).

Options, sessions, errors and exit codes are the other user commands' (``user``): ``upload`` prints the file's URL
alone on stdout (``URL=$(reelgate file upload photo.png)``) and its summary on stderr; a file that is not an image
or a full quota is the server's refusal (exit 1), a path that cannot be read a usage error (exit 2).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from reelgate.cli.common import grid
from reelgate.cli.listing import Col
from reelgate.cli.user import ApiKey, AsJson, BaseUrl, print_answer, print_json, print_table, session, short_time

FileId = Annotated[str, typer.Argument(metavar="FILE_ID", help="The file id (file_...).", show_default=False)]

# The id and the expiry are never cut and the name and the URL fold; a terminal narrower than about 85 columns
# leaves out the size (80 still shows the type), a narrower one the type too.
LIST_COLUMNS = (
    Col("file_id", whole=True),
    Col("name", least=10),
    Col("type", whole=True, drop=2),
    Col("bytes", whole=True, drop=1),
    Col("expires UTC", whole=True),
    Col("url", least=16),
)


def _short_iso(iso: str) -> str:
    """An ISO 8601 time from the server as the lists show times; as given if it is not one."""
    try:
        return short_time(int(datetime.fromisoformat(iso).timestamp()))
    except ValueError:
        return iso


def file_upload(
    path: Annotated[Path, typer.Argument(help="The image to upload: JPEG, PNG, GIF or WebP (judged by content).")],
    upload_path: Annotated[str | None, typer.Option("--upload-path", help="Custom upload path (e.g. avatars).")] = None,
    file_name: Annotated[str | None, typer.Option("--file-name", help="Custom file name.")] = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Upload an image (streamed, never read whole); print its URL, usable as an image URL in any request."""
    with session(api_key, base_url) as client:
        file = client.files.upload(path, upload_path=upload_path, file_name=file_name)
    note = f"uploaded {file.id}: {file.mime_type}, {file.size} bytes, expires {file.expires_at}"
    print_answer(file.raw, as_json, file.url, note=note)


def file_list(
    page: Annotated[int, typer.Option("--page", min=1, help="Page number, from 1.")] = 1,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=100, help="Files per page.")] = 20,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """List your files, newest first (client.files.list)."""
    with session(api_key, base_url) as client:
        found = client.files.list(page=page, page_size=page_size)
    if as_json:
        print_json(found.raw)
        return
    rows = [
        (f.id, f.file_name, f.mime_type.removeprefix("image/"), str(f.size), _short_iso(f.expires_at), f.url)
        for f in found.files
    ]
    print_table(LIST_COLUMNS, rows)
    typer.echo(f"{found.total} files" + (f"; next: --page {page + 1}" if found.has_more else ""), err=True)


def file_delete(file_id: FileId, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """Delete a file: its URL answers 404 from now on (elements made from it keep their own copies)."""
    with session(api_key, base_url) as client:
        gone = client.files.delete(file_id)
    print_answer({"file_id": gone, "deleted": True}, as_json, f"deleted {gone}")


def file_quota(as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """How many files your account keeps, and how many more it may upload (client.files.quota)."""
    with session(api_key, base_url) as client:
        found = client.files.quota()
    table = grid()
    for key, value in (("used", found.used), ("max", found.max), ("remaining", found.remaining)):
        table.add_row(Text(key), Text(str(value)))
    print_answer(found.raw, as_json, table)


def file_app() -> typer.Typer:
    file = typer.Typer(
        no_args_is_help=True, help="Upload images to get URLs for generation requests; list, delete, quota."
    )
    file.command("upload")(file_upload)
    file.command("list")(file_list)
    file.command("delete")(file_delete)
    file.command("quota")(file_quota)
    return file
