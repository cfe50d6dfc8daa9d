"""Webhook self-service: the signing secret's id, its rotation, and resending a task's callback delivery.

Tenants reach these through the API (their own account and tasks), operators through ``reelgate.operators`` (any
account): one implementation for both callers. The secret itself is shown once, in the answer to a rotation;
reads show its id, which anyone holding the secret can compute (``secret_id``) to tell which secret they hold.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reelgate.callbacks import new_secret
from reelgate.domain import TERMINAL_STATUSES, TaskRecord, delivery_view
from reelgate.errors import ApiError, Conflict

if TYPE_CHECKING:  # the store's engines stay unloaded until a caller opens one
    from reelgate.store.db import Row
    from reelgate.store.sql import Store

log = logging.getLogger("reelgate.webhooks")
SECRET_ID_PREFIX = "whk_"


def secret_id(secret: str) -> str:
    """A signing secret's public id: ``whk_`` and the first 16 hex digits of the SHA-256 of the secret as shown
    (``whsec_...``). It tells secrets apart and reveals nothing of one: the secret has 256 random bits."""
    return SECRET_ID_PREFIX + hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SecretInfo:
    """The account's signing secret as it may be shown at any time: its id and when it was made (Unix seconds)."""

    id: str
    created: float

    def public(self) -> dict[str, Any]:
        return {"object": "webhook_secret", "id": self.id, "created": int(self.created)}


@dataclass(frozen=True)
class NewSecret(SecretInfo):
    """A secret just made by a rotation: ``secret`` is shown this once (the store keeps it sealed)."""

    secret: str

    def public(self) -> dict[str, Any]:
        return {**super().public(), "secret": self.secret}


def public_delivery(row: Row | dict[str, Any]) -> dict[str, Any]:
    """A delivery row as its task's owner reads it: ISO 8601 times, ``in_flight`` while an attempt is under way."""
    view = dict(row)
    if "in_flight" in view:
        view["in_flight"] = bool(view["in_flight"])
    return {"object": "callback_delivery", **delivery_view(view)}


class WebhookService:
    """Webhook use cases over one store; each method is one use case, as a route or a command calls it.
    ``on_queued`` hear the task id of a callback a resend queued, after the commit (to wake a dispatcher)."""

    def __init__(self, store: Store, on_queued: Sequence[Callable[[str], None]] = ()) -> None:
        self.store = store
        self.on_queued = on_queued

    async def secret(self, account_id: int) -> SecretInfo:
        found = await self.store.accounts.webhook_secret_record(account_id)
        return SecretInfo(secret_id(found.secret), found.created)

    async def rotate(self, account_id: int) -> NewSecret:
        """Replace the account's signing secret at once: every attempt from now on, retries of earlier deliveries
        included, is signed with the new one (there is no overlap in which the old one still signs)."""
        fresh = new_secret()
        made = await self.store.accounts.set_webhook_secret(account_id, fresh)
        log.info("webhook secret rotated", extra={"account_id": account_id, "secret_id": secret_id(fresh)})
        return NewSecret(secret_id(fresh), made, fresh)

    async def resend(self, task: TaskRecord) -> dict[str, Any]:
        """Send a finished task's dead callback delivery again, now, as a new round of attempts (the same
        webhook-id, the task object as it is now, signed with the current secret, retried 1/2/4 s). A delivery
        still pending or already delivered is refused with 409, saying which."""
        if task.callback_url is None:
            raise Conflict(f"task {task.id} was submitted without a callback_url, so there is no callback to resend",
                           param="task_id", code="no_callback_url")  # fmt: skip
        if task.status not in TERMINAL_STATUSES:
            raise Conflict(f"task {task.id} is still {task.status}; its callback is sent when it ends",
                           param="task_id", code="task_not_finished")  # fmt: skip
        done = await self.store.deliveries.resend(task.id, time.time())
        if done.delivery is None:
            raise ApiError(f"the callback delivery of task {task.id} is missing")  # finish writes it with the status
        view = public_delivery(done.delivery)
        if not done.resent:
            raise _not_resendable(task.id, view)
        log.info("callback resent", extra={"task_id": task.id, "delivery_id": view["id"], "resends": view["resends"]})
        for listener in self.on_queued:
            listener(task.id)
        return view


def _not_resendable(task_id: str, view: dict[str, Any]) -> Conflict:
    if view["status"] == "delivered":
        return Conflict(f"the callback of task {task_id} was already delivered (attempt {view['attempts']}, "
                        f"{view.get('finished_at')}); only a dead delivery can be resent", param="task_id",
                        code="callback_already_delivered")  # fmt: skip
    if view.get("in_flight"):
        when = "an attempt is under way right now"
    else:
        when = f"its next attempt is due at {view.get('next_attempt')}"
    return Conflict(f"the callback of task {task_id} is still being delivered ({when}); it can be resent once "
                    "its last attempt has failed (status dead)", param="task_id", code="callback_pending")  # fmt: skip
