"""Operator commands: API keys, credits, webhook secrets, per-account limits, and any account's task by id (and,
from ``admin_status``, ``status`` and ``callbacks resend``).

Each command parses its arguments, calls one use case of ``reelgate.operators.Operators`` (which a web console can
call too), or for one that changes something the audited ``reelgate.console_ops.OperatorActions`` (so it shows in
the console's audit log, by ``cli``), and renders the answer; a refusal (no such account, key or task) is one
``error:`` line and exit 1, a database that cannot be opened one line and exit 5. Tables keep ids whole on an
80-column terminal: the ledger drops its entry ids and the year and seconds of its times, and shows a task or a note
in one column, when the full table does not fit.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from reelgate.cli.admin_status import audited, status_apps
from reelgate.cli.common import AsJson, credits_to_milli, grid, operate, when
from reelgate.cli.listing import Col, fits, fitted
from reelgate.domain import format_credits
from reelgate.operators import TaskOverview

Account = Annotated[str, typer.Option("--account", help="Account name.")]
# Said on every operator group: run from another directory, the default database is another (new) file.
DATABASE = (" Uses REELGATE_DATABASE_URL, else reelgate.db in REELGATE_DATA_DIR (default: ./reelgate-data, relative to"
            " the current directory); each command prints the database it used on stderr.")  # fmt: skip
KEY_COLUMNS = (Col("prefix", whole=True), Col("account"), Col("name"), Col("created UTC", whole=True),
               Col("revoked UTC", whole=True))  # fmt: skip
# The ledger in full (wide terminals, and scripts that read it with COLUMNS set wide) and, when that does not fit,
# compact: no entry id, times without year and seconds, and the task or the note (an entry has one or the other).
LEDGER_COLUMNS = (Col("id", whole=True), Col("time", whole=True), Col("kind", whole=True), Col("credits", whole=True),
                  Col("task", whole=True), Col("note"))  # fmt: skip
COMPACT_LEDGER_COLUMNS = (Col("time UTC", whole=True), Col("kind", whole=True), Col("credits", whole=True),
                          Col("task or note", least=32))  # fmt: skip


def _keys() -> typer.Typer:
    keys = typer.Typer(
        no_args_is_help=True,
        short_help="Create, list and revoke API keys.",
        help="Create, list and revoke API keys." + DATABASE,
    )

    @keys.command("create")
    def create(account: Account, credits: Annotated[str, typer.Option(help="Credits to grant.")] = "",
               group: Annotated[str | None, typer.Option(help="User group (pricing).")] = None,
               name: Annotated[str, typer.Option(help="A label for the key.")] = "") -> None:  # fmt: skip
        """Create the account if new, grant credits if given, and print the new key alone on the last line."""
        amount = credits_to_milli(credits) if credits and credits.strip() not in ("0", "0.0") else 0
        created = audited(lambda ops, actor: ops.create_key(actor, account, name, credits=amount, group=group,
                                                              new_account=True))  # fmt: skip
        typer.echo(f"created a key for account {account!r} (shown once; store it now):", err=True)
        typer.echo(created.key)

    @keys.command("list")
    def list_keys(account: Annotated[str, typer.Option("--account", help="Only this account's keys.")] = "") -> None:
        """List keys (prefixes only; keys are stored as hashes)."""
        found = operate(lambda ops: ops.list_keys(account or None))
        rows = [(k.prefix, k.account, k.name, _minute(k.created), _minute(k.revoked_at) if k.revoked_at else "")
                for k in found]  # fmt: skip
        console = Console()
        console.print(fitted(KEY_COLUMNS, rows, console.width, boxed=True))

    @keys.command("revoke")
    def revoke(
        prefix: Annotated[
            str, typer.Argument(metavar="PREFIX", help="The key's prefix as shown by 'keys list', or the key.")
        ],
    ) -> None:
        """Revoke a key; every process stops accepting it within the key cache TTL (1 s by default)."""
        typer.echo(f"revoked {audited(lambda ops, actor: ops.revoke_key(actor, None, prefix))}")

    return keys


def _credits() -> typer.Typer:
    # `reelgate credits` alone is the API user's balance (its callback, added where the app is assembled); these
    # subcommands are the operator's, on the database.
    credits = typer.Typer(
        short_help="Your key's credits; operators: grant credits, show balances and the ledger.",
        help="Alone: your API key's and account's credits, remaining and used (GET /v1/credits, with REELGATE_API_KEY"
        " and REELGATE_BASE_URL like the other API commands). With a command below (operators): grant credits to any"
        " account and show its balance and ledger, from the database." + DATABASE,
        subcommand_metavar="[COMMAND [ARGS]...]",
    )

    @credits.command("grant")
    def grant(
        account: Account, amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="Credits to add.")]
    ) -> None:
        """Add credits to an account (operators; the database)."""
        milli = credits_to_milli(amount)
        audited(lambda ops, actor: ops.grant_credits(actor, account, milli))
        typer.echo(f"granted {format_credits(milli)} credits to {account}")

    @credits.command("show")
    def show(account: Account,
             entries: Annotated[int, typer.Option(min=1, help="Ledger entries to show, newest first.")] = 20,
             ) -> None:  # fmt: skip
        """An account's balance, tasks in flight and recent ledger (operators; the database).

        The balance is available (may be spent), reserved (held for running tasks) and captured (spent).
        """
        view = operate(lambda ops: ops.account(account, entries))
        b = view.balance
        # Plain lines, each short enough for 80 columns, so no phrase is wrapped in the middle.
        typer.echo(f"account {view.name} (group {view.user_group})")
        typer.echo(f"available {format_credits(b.available)}, reserved {format_credits(b.reserved)}, "
                   f"captured {format_credits(b.captured)}, tasks in flight {view.in_flight}")  # fmt: skip
        console = Console()
        full = [(str(e["id"]), _second(e["created"]), e["kind"], str(format_credits(e["amount"])), e["task_id"] or "",
                 e["note"]) for e in view.ledger]  # fmt: skip
        if fits(LEDGER_COLUMNS, full, console.width, boxed=True):
            console.print(fitted(LEDGER_COLUMNS, full, console.width, boxed=True))
            return
        compact = [(_short(e["created"]), e["kind"], str(format_credits(e["amount"])), e["task_id"] or e["note"])
                   for e in view.ledger]  # fmt: skip
        console.print(fitted(COMPACT_LEDGER_COLUMNS, compact, console.width, boxed=True))

    return credits


def _second(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


def _minute(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(at))


def _short(at: float) -> str:
    return time.strftime("%m-%d %H:%M", time.gmtime(at))


def _webhooks() -> typer.Typer:
    hooks = typer.Typer(
        no_args_is_help=True,
        short_help="Show or rotate an account's webhook signing secret.",
        help="Show or rotate an account's webhook signing secret." + DATABASE,
    )

    @hooks.command("secret")
    def secret(account: Account) -> None:
        """Print the account's signing secret alone on the last line."""
        typer.echo(operate(lambda ops: ops.webhook_secret(account)))

    @hooks.command("rotate")
    def rotate(account: Account) -> None:
        """Replace the signing secret; callbacks sent from now on use the new one (printed on the last line)."""
        typer.echo(audited(lambda ops, actor: ops.rotate_webhook_secret(actor, account)))

    return hooks


def _accounts() -> typer.Typer:
    accounts = typer.Typer(
        no_args_is_help=True, short_help="Per-account limits.", help="Per-account limits." + DATABASE
    )

    @accounts.command("limits")
    def limits(account: Account,
               rate_per_minute: Annotated[int | None, typer.Option(help="Requests per minute per key.")] = None,
               max_in_flight: Annotated[int | None, typer.Option(help="Tasks pending or processing at once.")] = None,
               ) -> None:  # fmt: skip
        """Set the account's rate limit and in-flight cap (unset = the service defaults)."""
        set_ = audited(lambda ops, actor: ops.set_limits(actor, account, rate_per_minute, max_in_flight))
        typer.echo(f"limits for {set_.account}: {set_.rate_per_minute or 'default'} requests/min, "
                   f"{set_.max_in_flight or 'default'} tasks in flight")  # fmt: skip

    return accounts


def task_json(task: TaskOverview) -> dict[str, Any]:
    """The task for scripts: its fields, with credits as the API shows them rather than in thousandths."""
    data = asdict(task)
    price, charged = data.pop("price"), data.pop("charged")
    data["credits_reserved"] = format_credits(price)
    data["credits_charged"] = None if charged is None else format_credits(charged)
    return data


def task_panel(task: TaskOverview) -> Panel:
    """The task at a glance, as an operator needs it: whose it is, where it ran, when, what it cost, how it ended."""
    charged = "pending" if task.charged is None else f"{format_credits(task.charged):g}"
    rows = [
        ("task", task.id),
        ("account", f"{task.account} (id {task.account_id}, group {task.user_group})"),
        ("status", f"{task.status} ({task.progress}%)"),
        ("model", task.model),
        ("provider", task.provider),
        ("attempts", str(task.attempts)),
        ("created", when(task.created_at)),
        ("updated", when(task.updated_at)),
        ("finished", when(task.finished_at)),
        ("deadline", "" if task.finished_at else when(task.deadline)),
        ("credits", f"reserved {format_credits(task.price):g}, charged {charged}"),
        ("result", json.dumps(task.result, ensure_ascii=False) if task.result is not None else ""),
        ("error", f"{task.error_code}: {task.error_message}" if task.error_code else ""),
        ("callback", task.callback_url or ""),
    ]
    table = grid()
    for key, value in rows:
        if value:
            table.add_row(Text(key), Text(value))
    style = {"completed": "green", "failed": "red"}.get(task.status, "yellow")
    return Panel(table, title=Text(f"task {task.status}"), border_style=style, expand=False)


def _tasks() -> typer.Typer:
    # 'tasks' (any account's, from the database) beside the user's 'task' (one's own, through the API)
    tasks = typer.Typer(
        no_args_is_help=True,
        short_help="Look up any account's task by id (operators; reads the database).",
        help="Look up any account's task by id (operators; reads the database)." + DATABASE,
    )

    @tasks.command("show")
    def show(task_id: Annotated[str, typer.Argument(metavar="TASK_ID", help="The task id (task-unified-...).")],
             as_json: AsJson = False) -> None:  # fmt: skip
        """Show a task of any account: owner, status, model, provider, times, credits and error."""
        task = operate(lambda ops: ops.find_task(task_id))
        if as_json:
            typer.echo(json.dumps(task_json(task), indent=2, ensure_ascii=False))
        else:
            Console().print(task_panel(task))

    return tasks


def admin_apps() -> dict[str, typer.Typer]:
    return {"keys": _keys(), "credits": _credits(), "webhooks": _webhooks(), "accounts": _accounts(),
            "tasks": _tasks(), **status_apps()}  # fmt: skip
