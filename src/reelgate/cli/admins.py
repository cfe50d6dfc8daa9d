"""``reelgate admins create | list | disable``: the operators who may sign in to the web console at /console.

Passwords are asked twice at a terminal (never echoed), or read from the first line of standard input with
``--password-stdin`` for scripts; they are never taken as an argument, which would leave them in the shell history
and the process list. Each change is written to the console's audit log as done by ``cli``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from reelgate.cli.common import AsJson, when, with_store
from reelgate.cli.listing import Col, fitted
from reelgate.console_ops import PASSWORD_MIN, Admins
from reelgate.errors import ApiError, InvalidRequest

T = TypeVar("T")
DATABASE = (" Uses REELGATE_DATABASE_URL, else reelgate.db in REELGATE_DATA_DIR (default: ./reelgate-data); each"
            " command prints the database it used on stderr.")  # fmt: skip
COLUMNS = (Col("username", whole=True), Col("state", whole=True), Col("created UTC", whole=True),
           Col("last sign-in UTC", whole=True))  # fmt: skip
Username = Annotated[str, typer.Argument(metavar="USERNAME", help="The operator's username (lowercase).")]


def _admins(work: Callable[[Admins], Awaitable[T]]) -> T:
    """One use case on the configured database; a refusal is one ``error:`` line, exit 1 (unknown or taken) or 2."""
    try:
        return with_store(lambda store: work(Admins(store)))
    except ApiError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2 if isinstance(exc, InvalidRequest) else 1) from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        typer.echo("error: no terminal to ask for the password: pass --password-stdin and write it to stdin", err=True)
        raise typer.Exit(2)
    return str(typer.prompt(f"Password (at least {PASSWORD_MIN} characters)", hide_input=True,
                            confirmation_prompt=True))  # fmt: skip


def admins_app() -> typer.Typer:
    admins = typer.Typer(
        no_args_is_help=True,
        short_help="Operators of the web console (/console): create, list, disable.",
        help="Operators who may sign in to the web console at /console." + DATABASE,
    )

    @admins.command("create")
    def create(
        username: Username,
        password_stdin: Annotated[
            bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
        ] = False,
    ) -> None:
        """Add an operator; the password is asked for (twice), or read from stdin with --password-stdin."""
        password = _password(password_stdin)
        _admins(lambda a: a.create(username, password))
        typer.echo(f"created operator {username!r}: sign in at /console")

    @admins.command("list")
    def list_admins(as_json: AsJson = False) -> None:
        """List operators: active or disabled, when made, when they last signed in."""
        found = _admins(lambda a: a.listed())
        if as_json:
            rows = [{"username": a.username, "disabled": a.disabled_at is not None, "created": a.created,
                     "disabled_at": a.disabled_at, "last_sign_in": a.last_sign_in} for a in found]  # fmt: skip
            typer.echo(json.dumps(rows, indent=2))
            return
        table = [(a.username, "disabled" if a.disabled_at else "active", when(a.created)[:16],
                  when(a.last_sign_in)[:16]) for a in found]  # fmt: skip
        console = Console()
        console.print(fitted(COLUMNS, table, console.width, boxed=True))

    @admins.command("disable")
    def disable(username: Username) -> None:
        """Disable an operator: no more sign-ins, and their open sessions end at once."""
        _admins(lambda a: a.disable(username))
        typer.echo(f"disabled operator {username!r}")

    return admins
