"""The command line: ``reelgate serve | worker | dispatcher | migrate | keys | credits | webhooks | accounts``.

This package's ``__init__`` only assembles the Typer app; the commands live beside it: ``serve`` (serve, worker,
dispatcher, migrate), ``admin`` (operator commands), ``user`` (user commands through the HTTP client), ``demo``,
and ``common`` (what they share).

The server stack (uvicorn, the runtime, the media libraries, Alembic) is imported by the commands that run it,
not at start-up: ``reelgate task get`` or ``reelgate --help`` should not pay a second for libraries they never use.
"""

from __future__ import annotations

from typing import Annotated

import typer

from reelgate.cli.admin import admin_apps
from reelgate.cli.serve import server_commands
from reelgate.cli.user import user_apps

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Reelgate: a self-hosted EvoLink-compatible gateway."
)
for name, sub in admin_apps().items():
    app.add_typer(sub, name=name)
for name, sub in user_apps().items():
    app.add_typer(sub, name=name)


@app.command()
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the demo's data directory afterwards.")] = False,
) -> None:
    """Try Reelgate with no setup and no network: start a server, create an element, show it, stop."""
    from reelgate.cli.demo import run_demo

    run_demo(keep=keep)


for command in server_commands():
    app.command()(command)


def main() -> None:
    app()
