"""The API user's webhook commands, through ``reelgate_client``: ``reelgate webhook retrieve-secret`` (also
``secret``) and ``reelgate webhook rotate-secret`` (also ``rotate``), named after ``client.webhooks``'s methods, and
``reelgate task resend-callback TASK_ID`` (``client.tasks.resend_callback``).

``webhook`` (the caller's own secret, through the API, with an API key) sits beside the operators' ``webhooks``
(any account's secret, from the database), as ``task`` sits beside ``tasks``. The key and the server come from
``--api-key``/``--base-url`` or ``REELGATE_API_KEY``/``REELGATE_BASE_URL``; answers go to stdout (``--json`` for
scripts), notes and errors to stderr, so ``SECRET=$(reelgate webhook rotate-secret --yes)`` captures the new secret
alone. Sessions, errors and exit codes are the other user commands' (``user``): a callback that is not dead is the
server's refusal (exit 1, saying whether it is still being delivered or already was).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.text import Text

from reelgate.cli.common import grid, when
from reelgate.cli.user import ApiKey, AsJson, BaseUrl, TaskId, print_answer, session
from reelgate_client import CallbackDelivery

# after the secret commands' no-key error: an operator may have meant the database's command, which needs none
_OPERATOR_HINT = " (an operator's command for any account's secret is: reelgate webhooks)"
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Rotate without asking first (for scripts).")]


@dataclass(frozen=True)
class TenantWebhookCommands:
    """What to register: ``groups`` by name under ``reelgate`` (``webhook``), and ``task_commands`` by name under
    the user's existing ``reelgate task`` group (``resend-callback``)."""

    groups: dict[str, typer.Typer]
    task_commands: dict[str, Callable[..., None]]


def retrieve_secret(as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """Show your webhook signing secret's id and when it was made (the secret itself is shown only by a rotation)."""
    with session(api_key, base_url, hint=_OPERATOR_HINT) as client:
        secret = client.webhooks.retrieve_secret()
    table = grid()
    for key, value in (("secret id", secret.id), ("created", when(secret.created))):
        table.add_row(Text(key), Text(value))
    print_answer(secret.raw, as_json, table)


def rotate_secret(yes: Yes = False, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """Replace your webhook signing secret at once and print the new one, shown this once, alone on stdout.

    Every callback attempt from now on is signed with the new secret and the old one signs nothing more: update
    your receiver right away (a callback it refuses meanwhile can be sent again with: reelgate task resend-callback).
    """
    if not yes:
        typer.confirm("Rotate the webhook signing secret? Callbacks are signed with the new one at once", abort=True)
    with session(api_key, base_url, hint=_OPERATOR_HINT) as client:
        rotated = client.webhooks.rotate_secret()
    note = f"rotated: callbacks are now signed with secret {rotated.id} (shown once; store it now):"
    print_answer(rotated.raw, as_json, rotated.secret or "", note=note)


def _delivery_summary(delivery: CallbackDelivery) -> str:
    return (f"resent the callback of {delivery.task_id} to {delivery.url} (webhook-id {delivery.id}, "
            f"{delivery.attempts} attempts before, resend {delivery.resends}); it goes out now and is retried after "
            "1, 2 and 4 s")  # fmt: skip


def resend_callback(task_id: TaskId, as_json: AsJson = False, api_key: ApiKey = None, base_url: BaseUrl = None) -> None:
    """Send a finished task's dead callback again (at most 5 a minute per account).

    Only a delivery whose attempts all failed can be resent: one still being delivered or already delivered is
    refused (exit 1), saying which.
    """
    with session(api_key, base_url) as client:
        delivery = client.tasks.resend_callback(task_id)
    print_answer(delivery.raw, as_json, _delivery_summary(delivery))


def tenant_webhook_commands() -> TenantWebhookCommands:
    webhook = typer.Typer(
        no_args_is_help=True,
        help="Your webhook signing secret, through the API: its id, and rotating it (operators: reelgate webhooks).",
    )
    webhook.command("retrieve-secret")(retrieve_secret)
    webhook.command("secret", help="The same as retrieve-secret: show the secret's id.")(retrieve_secret)
    webhook.command("rotate-secret")(rotate_secret)
    webhook.command("rotate", help="The same as rotate-secret: a new secret, shown once.")(rotate_secret)
    return TenantWebhookCommands(groups={"webhook": webhook}, task_commands={"resend-callback": resend_callback})
