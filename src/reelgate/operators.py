"""What an operator does: accounts, API keys, credits, limits, webhook secrets, any account's task by id, and the
deployment's health (who runs the work, and whether it is getting done).

The command line (``reelgate keys | credits | webhooks | accounts | tasks``) is one caller and a web console will be
another, so everything here takes plain values and answers with plain dataclasses; a refusal is an error from
``reelgate.errors`` whose message names the account, key or task. Nothing here prints, exits or parses text.
Amounts of credits are in thousandths, as the store keeps them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reelgate.auth import hash_key, key_prefix, new_api_key
from reelgate.callbacks import new_secret
from reelgate.domain import is_task_id
from reelgate.errors import InvalidRequest, NotFound
from reelgate.health import Health, Thresholds, read_health
from reelgate.store.accounts import AccountView
from reelgate.store.task_lookup import TaskOverview, find_task
from reelgate.webhook_service import SecretInfo, WebhookService

if TYPE_CHECKING:  # the store's engines (SQLAlchemy, asyncpg) stay unloaded until a caller opens one
    from reelgate.store.sql import Store

__all__ = ["AccountView", "Health", "KeyInfo", "Limits", "NewKey", "Operators", "SecretInfo", "TaskOverview",
           "Thresholds"]  # fmt: skip


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``key`` is shown this once (the store keeps only its hash)."""

    account: str
    account_id: int
    key: str
    prefix: str
    granted: int


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as lists show it: its prefix, never the key."""

    prefix: str
    account: str
    name: str
    created: float
    revoked_at: float | None


@dataclass(frozen=True)
class Limits:
    """An account's limits; None means the service default."""

    account: str
    rate_per_minute: int | None
    max_in_flight: int | None


class Operators:
    """Operator use cases over one store; each method is one use case, as a command or a console page calls it."""

    def __init__(self, store: Store, *, on_callback_queued: Sequence[Callable[[str], None]] = ()) -> None:
        self.store = store
        self.on_callback_queued = on_callback_queued  # told a resent callback's task id: wakes a dispatcher

    async def account_id(self, account: str) -> int:
        found = await self.store.accounts.account_id(account)
        if found is None:
            raise NotFound(f"no account named {account!r}", code="account_not_found", param="account")
        return found

    async def ensure_account(self, account: str, group: str | None = None) -> int:
        """The account's id, creating it (with a fresh webhook secret) if new; ``group`` sets its pricing group."""
        return await self.store.accounts.ensure_account(account, group, new_secret())

    async def create_key(self, account: str, *, credits: int = 0, group: str | None = None, name: str = "",
                         grant_note: str = "granted with key creation") -> NewKey:  # fmt: skip
        """Create the account if new, grant ``credits`` (thousandths) if any, and add a new key for it."""
        if credits < 0:
            raise InvalidRequest(f"credits for {account!r} must not be negative, got {credits / 1000:g}",
                                 param="credits")  # fmt: skip
        key = new_api_key()
        account_id = await self.ensure_account(account, group)
        if credits:
            await self.store.accounts.grant(account_id, credits, grant_note)
        await self.store.accounts.add_key(account_id, hash_key(key), key_prefix(key), name)
        return NewKey(account=account, account_id=account_id, key=key, prefix=key_prefix(key), granted=credits)

    async def list_keys(self, account: str | None = None) -> list[KeyInfo]:
        """Every key, or one account's (an unknown account has none), oldest first."""
        rows = await self.store.accounts.list_keys(account)
        return [
            KeyInfo(
                prefix=str(r["prefix"]),
                account=str(r["account"]),
                name=str(r["name"]),
                created=float(r["created"]),
                revoked_at=None if r["revoked_at"] is None else float(r["revoked_at"]),
            )
            for r in rows
        ]

    async def revoke_key(self, key_or_prefix: str) -> str:
        """Revoke the active key with this prefix (a whole key works too); returns the prefix."""
        prefix = key_prefix(key_or_prefix)
        if not await self.store.accounts.revoke_key(prefix):
            raise NotFound(f"no active key with prefix {prefix!r}", code="api_key_not_found", param="prefix")
        return prefix

    async def grant_credits(self, account: str, credits: int, note: str = "operator grant") -> int:
        """Add ``credits`` (thousandths, more than 0) to the account; returns the amount granted."""
        if credits <= 0:
            raise InvalidRequest(f"credits granted to {account!r} must be more than 0, got {credits / 1000:g}",
                                 param="credits")  # fmt: skip
        await self.store.accounts.grant(await self.account_id(account), credits, note)
        return credits

    async def account(self, account: str, entries: int = 20) -> AccountView:
        """The account's balance (available, reserved, captured), tasks in flight and its latest ledger entries."""
        return await self.store.accounts.view(await self.account_id(account), entries)

    async def set_limits(self, account: str, *, rate_per_minute: int | None = None,
                         max_in_flight: int | None = None) -> Limits:  # fmt: skip
        """Set the account's requests per minute (per key) and tasks in flight; None = the service default."""
        await self.store.accounts.set_limits(await self.account_id(account), rate_per_minute, max_in_flight)
        return Limits(account=account, rate_per_minute=rate_per_minute, max_in_flight=max_in_flight)

    async def webhook_secret(self, account: str) -> str:
        """The secret the account's callbacks are signed with."""
        return await self.store.accounts.webhook_secret(await self.account_id(account))

    async def webhook_secret_info(self, account: str) -> SecretInfo:
        """The account's signing secret's id and when it was made, as the tenant sees them (GET /v1/webhooks/secret)."""
        return await WebhookService(self.store).secret(await self.account_id(account))

    async def rotate_webhook_secret(self, account: str) -> str:
        """Replace the account's signing secret; callbacks sent from now on use the new one, which is returned.
        The same use case as the tenant's POST /v1/webhooks/secret/rotate."""
        rotated = await WebhookService(self.store).rotate(await self.account_id(account))
        return rotated.secret

    async def resend_callback(self, task_id: str) -> dict[str, Any]:
        """Send any account's task's dead callback delivery again (the tenant's POST .../callbacks/resend, without
        its rate limit); returns the delivery as the tenant reads it."""
        task = await self.store.tasks.get(task_id) if is_task_id(task_id) else None
        if task is None:
            raise NotFound(f"no task {task_id!r} in any account", code="task_not_found", param="task_id")
        return await WebhookService(self.store, self.on_callback_queued).resend(task)

    async def health(self, thresholds: Thresholds | None = None) -> Health:
        """Workers and dispatchers alive (with when each last heartbeated), the queue, and whether the backlog is
        stalled and why; ``thresholds`` default to 30 s of silence and 120 s of waiting (pass
        ``Thresholds.from_settings(settings)`` for the configured ones)."""
        return await read_health(self.store, thresholds or Thresholds(), time.time())

    async def find_task(self, task_id: str) -> TaskOverview:
        """Any account's task by id, with its owner, provider and times."""
        found = await find_task(self.store.db, task_id)
        if found is None:
            raise NotFound(f"no task {task_id!r} in any account", code="task_not_found", param="task_id")
        return found
