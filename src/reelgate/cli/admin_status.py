"""Operator commands about the work itself: ``reelgate status`` (is it getting done?) and ``reelgate callbacks
resend TASK_ID`` (any account's dead callback, sent again).

``status`` reads the database every process shares, so it answers for the whole deployment, from any machine:
the workers and dispatchers alive (each with when it last heartbeated), the tasks waiting and the oldest one's
wait, and whether the backlog is stalled. Its exit code is for monitors and scripts: 0 when the work is moving, 3
when it is stalled (1, 2 and 5 keep their meaning from the other operator commands). ``audited`` runs an operator
action that changes something through the console's audited use cases, so it shows in the console's audit log as
done by ``cli``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from reelgate.cli.common import AsJson, operate, settings, with_store
from reelgate.cli.listing import Col, fitted
from reelgate.console_ops import CLI, Actor, OperatorActions
from reelgate.errors import ApiError, InvalidRequest
from reelgate.health import Health, Thresholds

T = TypeVar("T")

EXIT_STALLED = 3
DATABASE_NOTE = (" Uses REELGATE_DATABASE_URL, else reelgate.db in REELGATE_DATA_DIR (default: ./reelgate-data, "
                 "relative to the current directory).")  # fmt: skip


def audited(work: Callable[[OperatorActions, Actor], Awaitable[T]]) -> T:
    """One audited operator action (actor ``cli``) on the configured database; a refusal is one ``error:`` line and
    exit 1 (no such account, key or task) or 2 (a value out of range), as ``operate`` answers."""
    try:
        return with_store(lambda store: work(OperatorActions(store), CLI))
    except ApiError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2 if isinstance(exc, InvalidRequest) else 1) from None


PROCESS_COLUMNS = (Col("kind", whole=True), Col("state", whole=True), Col("last seen", whole=True),
                   Col("in hand", whole=True), Col("id", whole=True), Col("started UTC", whole=True, drop=2),
                   Col("host", drop=1))  # fmt: skip


def ago(seconds: float) -> str:
    """A short duration in the largest unit that keeps it readable: 4 s, 12 min, 3 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def health_json(health: Health) -> dict[str, Any]:
    """The health for scripts: every field, with the counts of processes alive by kind."""
    data = asdict(health)
    data["workers_alive"] = health.workers_alive
    data["dispatchers_alive"] = health.dispatchers_alive
    return data


def health_lines(health: Health) -> list[str]:
    """The verdict, the queue and the warnings, one short line each."""
    lines = [f"STALLED: {reason}" for reason in health.reasons] if health.stalled else ["ok: the backlog is moving"]
    waiting = health.queue_depth
    if waiting:
        lines.append(
            f"queue: {waiting} task{'' if waiting == 1 else 's'} waiting, the oldest for "
            f"{ago(health.oldest_waiting_seconds)} (stalled past {health.thresholds.stall_seconds:g} s)"
        )
    else:
        lines.append("queue: no task waiting")
    lines.append(f"alive: {health.workers_alive} worker(s), {health.dispatchers_alive} dispatcher(s) (heartbeat "
                 f"within {health.thresholds.liveness_seconds:g} s)")  # fmt: skip
    lines.extend(f"warning: {warning}" for warning in health.warnings)
    return lines


def _process_rows(health: Health) -> list[tuple[str, ...]]:
    return [(p.kind, "alive" if p.alive else "SILENT", f"{ago(p.silent_seconds)} ago", f"{p.in_hand}/{p.concurrency}",
             p.id, time.strftime("%Y-%m-%d %H:%M", time.gmtime(p.started)), p.host)
            for p in health.processes]  # fmt: skip


def status(as_json: AsJson = False) -> None:
    """Is the work getting done? Workers and dispatchers alive, the queue, and whether the backlog is stalled.

    Stalled means no worker has heartbeated within REELGATE_LIVENESS_SECONDS (default 30) or the oldest waiting
    task has waited longer than REELGATE_STALL_SECONDS (default 120). Exit code 0 when the work is moving, 3 when
    it is stalled, so a monitor or a script can run it as a check.
    """
    thresholds = Thresholds.from_settings(settings())
    health = operate(lambda ops: ops.health(thresholds))
    if as_json:
        typer.echo(json.dumps(health_json(health), indent=2))
    else:
        for line in health_lines(health):
            typer.echo(line)
        if health.processes:
            console = Console()
            console.print(fitted(PROCESS_COLUMNS, _process_rows(health), console.width))
    if health.stalled:
        raise typer.Exit(EXIT_STALLED)


def status_app() -> typer.Typer:
    """``reelgate status``: a group that runs its one command itself, so it registers beside the other groups."""
    app = typer.Typer(help=(status.__doc__ or "") + DATABASE_NOTE, subcommand_metavar="", short_help="Is the work "
                      "getting done? Workers alive, the queue, stalled or not (exit 3).")  # fmt: skip
    app.callback(invoke_without_command=True)(status)
    return app


def callbacks_app() -> typer.Typer:
    callbacks = typer.Typer(
        no_args_is_help=True,
        short_help="Resend any account's dead callback (operators; the database).",
        help="Resend any account's dead callback (operators; the database)." + DATABASE_NOTE,
    )

    @callbacks.command("resend")
    def resend(task_id: Annotated[str, typer.Argument(metavar="TASK_ID", help="The task id (task-unified-...).")],
               as_json: AsJson = False) -> None:  # fmt: skip
        """Send a finished task's dead callback again, whichever account owns it (the tenant's resend, without its
        rate limit): a new round of attempts with the same webhook-id, sent by a running dispatcher within a second.

        A delivery still being delivered or already delivered is refused (exit 1), saying which.
        """
        delivery = audited(lambda ops, actor: ops.resend_callback(actor, task_id))
        if as_json:
            typer.echo(json.dumps(delivery, indent=2, ensure_ascii=False))
            return
        typer.echo(f"resent the callback of {delivery['task_id']} to {delivery['url']} (webhook-id {delivery['id']}, "
                   f"{delivery['attempts']} attempts before, resend {delivery['resends']}); a running dispatcher "
                   "sends it within a second and retries it as it retries any callback")  # fmt: skip

    return callbacks


def status_apps() -> dict[str, typer.Typer]:
    return {"status": status_app(), "callbacks": callbacks_app()}
