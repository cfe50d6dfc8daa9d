"""User commands for the file API: ``reelgate file upload PATH | list | delete ID | quota`` (docs/files.md).

Like the other user commands they talk to a Reelgate server through ``reelgate_client``, with the key and address
from ``--api-key``/``--base-url`` or ``REELGATE_API_KEY``/``REELGATE_BASE_URL``. Answers go to stdout: ``upload``
prints the file's URL alone (``URL=$(reelgate file upload photo.png)``), ``--json`` the server's JSON; summaries and
errors go to stderr, one line each. Exit codes: 0 success, 1 the server refused (not an image, quota full, unknown
id, bad key), 2 usage (no API key, no such file), 5 the server could not be reached.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from reelgate.cli.common import grid
from reelgate_client import (
    DEFAULT_BASE_URL,
    APIConnectionError,
    APIStatusError,
    File,
    MediaInputError,
    Reelgate,
    ReelgateError,
)

EXIT_API, EXIT_USAGE, EXIT_CONNECTION = 1, 2, 5
ApiKey = Annotated[str | None, typer.Option("--api-key", envvar="REELGATE_API_KEY", show_default=False,
                                            help="API key (else REELGATE_API_KEY).")]  # fmt: skip
_BASE_URL_HELP = f"Server URL (else REELGATE_BASE_URL, else {DEFAULT_BASE_URL})."
BaseUrl = Annotated[str | None, typer.Option("--base-url", envvar="REELGATE_BASE_URL", show_default=False,
                                             help=_BASE_URL_HELP)]  # fmt: skip
AsJson = Annotated[bool, typer.Option("--json", help="Print the server's JSON on stdout (for scripts).")]

app = typer.Typer(no_args_is_help=True, help="Upload images to get URLs for generation requests; list, delete, quota.")


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def _session(api_key: str | None, base_url: str | None) -> Iterator[Reelgate]:
    """A client for one command; every client error becomes one line on stderr and its exit code."""
    if not api_key:
        raise _fail("no API key: pass --api-key or set REELGATE_API_KEY", EXIT_USAGE)
    client = Reelgate(api_key=api_key, base_url=base_url)
    try:
        yield client
    except APIStatusError as exc:
        raise _fail(str(exc), EXIT_API) from None
    except APIConnectionError as exc:
        raise _fail(f"{exc} (is the server running at {client.base_url}? see --base-url)", EXIT_CONNECTION) from None
    except MediaInputError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    except ReelgateError as exc:
        raise _fail(str(exc), EXIT_API) from None
    finally:
        client.close()


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@app.command()
def upload(
    path: Annotated[Path, typer.Argument(help="The image to upload: JPEG, PNG, GIF or WebP (judged by content).")],
    upload_path: Annotated[str | None, typer.Option("--upload-path", help="Custom upload path (e.g. avatars).")] = None,
    file_name: Annotated[str | None, typer.Option("--file-name", help="Custom file name.")] = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Upload an image (streamed, never read whole); print its URL, usable as an image URL in any request."""
    with _session(api_key, base_url) as client:
        file = client.files.upload(path, upload_path=upload_path, file_name=file_name)
    if as_json:
        _print_json(file.raw)
        return
    typer.echo(f"uploaded {file.id}: {file.mime_type}, {file.size} bytes, expires {file.expires_at}", err=True)
    typer.echo(file.url)


@app.command("list")
def list_files(
    page: Annotated[int, typer.Option("--page", min=1, help="Page number, from 1.")] = 1,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=100, help="Files per page.")] = 20,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """The account's files, newest first."""
    with _session(api_key, base_url) as client:
        found = client.files.list(page=page, page_size=page_size)
    if as_json:
        _print_json(found.raw)
        return
    Console().print(_table(found.files))
    typer.echo(f"{found.total} files" + (f"; next: --page {page + 1}" if found.has_more else ""), err=True)


def _table(files: list[File]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("file_id", "name", "type", "bytes", "expires", "url"):
        table.add_column(column, overflow="fold", no_wrap=column != "url")
    for f in files:
        table.add_row(f.id, Text(f.file_name), f.mime_type, str(f.size), f.expires_at, f.url)
    return table


@app.command()
def delete(
    file_id: Annotated[str, typer.Argument(help="The file id (file_...).")],
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Delete a file: its URL answers 404 from now on (elements made from it keep their own copies)."""
    with _session(api_key, base_url) as client:
        gone = client.files.delete(file_id)
    if as_json:
        _print_json({"file_id": gone, "deleted": True})
        return
    typer.echo(f"deleted {gone}")


@app.command()
def quota(as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """How many files the account keeps, and how many more it may upload."""
    with _session(api_key, base_url) as client:
        found = client.files.quota()
    if as_json:
        _print_json(found.raw)
        return
    table = grid()
    for key, value in (("used", found.used), ("max", found.max), ("remaining", found.remaining)):
        table.add_row(key, str(value))
    Console().print(table)
