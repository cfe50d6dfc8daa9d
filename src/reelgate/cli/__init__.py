"""The command line: ``reelgate serve | worker | dispatcher | migrate | keys | credits | webhooks | accounts | tasks
| status | callbacks | admins`` for operators, ``reelgate element | video | task | credits | model | file | webhook``
for API users, and ``reelgate demo``.

This package's ``__init__`` only assembles the Typer app; the commands live beside it: ``serve`` (serve, worker,
dispatcher, migrate), ``admin`` and ``admin_status`` (operator commands on the database), ``admins`` (the web
console's operators), ``user_elements``, ``user_videos``, ``user_tasks``,
``user_account``, ``files_user`` and ``webhooks_user`` (API user commands through the HTTP client, sharing ``user``;
``webhooks_user`` also adds ``resend-callback`` to ``task``), ``demo``, and what all share (``common``, ``listing``
for tables, ``help_layout`` for help screens).

``reelgate credits`` belongs to both: alone it is the API user's balance (``user_account.credits_balance``, the
group's callback), with ``show`` or ``grant`` it is the operator's, on the database. ``--json`` may be given to
``reelgate`` itself (``reelgate --json task get ID``) as well as to any command that has it.

The server stack (uvicorn, the runtime, the media libraries, Alembic) is imported by the commands that run it,
not at start-up: ``reelgate task get`` or ``reelgate --help`` should not pay a second for libraries they never use.
"""

from __future__ import annotations

from typing import Annotated

import typer

from reelgate.cli.admin import admin_apps
from reelgate.cli.admins import admins_app
from reelgate.cli.files_user import file_app
from reelgate.cli.help_layout import HelpfulGroup
from reelgate.cli.serve import server_commands
from reelgate.cli.user_account import credits_balance, model_app
from reelgate.cli.user_elements import element_app
from reelgate.cli.user_tasks import task_app
from reelgate.cli.user_videos import video_app
from reelgate.cli.webhooks_user import tenant_webhook_commands

app = typer.Typer(
    cls=HelpfulGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Reelgate: a self-hosted EvoLink-compatible gateway.",
)


@app.callback()
def root(
    as_json: Annotated[
        bool,
        typer.Option("--json", help="JSON on stdout, for any command below that has --json (the same as its own)."),
    ] = False,
) -> None:
    # Nothing to do here: each command's --json reads this value by its name (common.ROOT_JSON).
    del as_json


operator_apps = admin_apps() | {"admins": admins_app()}  # admins: operators of the web console
operator_apps["credits"].callback(invoke_without_command=True)(credits_balance)
for name, sub in operator_apps.items():
    app.add_typer(sub, name=name)
tenant_webhooks = tenant_webhook_commands()
task = task_app()
for name, command in tenant_webhooks.task_commands.items():
    task.command(name)(command)
user_apps = {"element": element_app(), "video": video_app(), "task": task, "model": model_app(), "file": file_app()}
for name, sub in (user_apps | tenant_webhooks.groups).items():
    app.add_typer(sub, name=name)


@app.command()
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the demo's data directory afterwards.")] = False,
    wait: Annotated[
        bool | None,
        typer.Option(
            "--wait/--no-wait",
            show_default=False,
            help="Keep the server up until Ctrl-C (default: when run in a terminal), or stop it at once.",
        ),
    ] = None,
) -> None:
    """Try Reelgate with no setup and no network: a server, an element, its links.

    Starts a server on a free loopback port with a fresh account, creates an element through the API and shows it,
    then keeps the server up (its links and an API key to try) until Ctrl-C; with --no-wait, or when not run in a
    terminal, it stops at once.
    """
    import sys

    from reelgate.cli.demo import run_demo

    run_demo(keep=keep, wait=sys.stdin.isatty() if wait is None else wait)


for command in server_commands():
    app.command()(command)


def main() -> None:
    app()
