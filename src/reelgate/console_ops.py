"""The web console's use cases that change something: operators (``reelgate admins``), signing in and out, and every
operator action, each written to the audit log with who did it and from where.

Passwords are hashed with Argon2id at OWASP's recommended cost (19 MiB of memory, 2 passes, 1 lane: 50-80 ms on the
2-core reference machine, where argon2-cffi's 64 MiB profile took 200 ms), in a thread so a sign-in never stalls the
event loop; a hash made with other parameters is redone at its next sign-in. A sign-in for an unknown operator costs
one hash too, so timing does not tell which usernames exist. A session is a random token in the cookie whose SHA-256
alone is stored, with the CSRF token its forms carry. The actions call ``reelgate.operators`` (the same use cases as
the command line) and the task service (an operator's cancel is the tenant's cancel, refunding alike); nothing here
knows about HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from reelgate.domain import FAILED, TaskRecord, format_credits, is_task_id, new_webhook_id
from reelgate.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound
from reelgate.operators import Limits, NewKey, Operators
from reelgate.store.console import AdminRecord, AuditEntry, ConsoleStore, SessionRecord
from reelgate.store.tasks import Finish

if TYPE_CHECKING:
    from reelgate.service import TaskService
    from reelgate.store.sql import Store

__all__ = [
    "CLI",
    "Actor",
    "AdminRecord",
    "Admins",
    "AuditEntry",
    "ConsoleActions",
    "NewSession",
    "OperatorActions",
    "SessionRecord",
]

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
PASSWORD_MIN = 12
PASSWORD_MAX = 1024  # a bound on the work one sign-in may ask of the hasher
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Actor:
    """Who does an operator action and from where, as the audit log records it."""

    username: str
    ip: str = ""


CLI = Actor("cli")


@dataclass(frozen=True)
class NewSession:
    """A session just started: ``token`` goes into the cookie (the store keeps its hash), ``csrf`` into forms."""

    token: str
    csrf: str
    expires: float
    username: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Admins:
    """Operators of the console: who they are, their passwords and sessions."""

    def __init__(self, store: Store, hasher: PasswordHasher | None = None) -> None:
        self.rows = ConsoleStore(store.db)
        self._hasher = hasher or PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
        self._decoy: str | None = None

    async def create(self, username: str, password: str, actor: Actor = CLI) -> int:
        if not USERNAME.fullmatch(username):
            raise InvalidRequest(f"username {username[:70]!r} must be 2-64 characters: lowercase letters, digits, "
                                 "'.', '_' or '-', starting with a letter or digit", param="username")  # fmt: skip
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise InvalidRequest(f"the password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long, "
                                 f"got {len(password)}", param="password")  # fmt: skip
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        created = await self.rows.create_admin(username, hashed)
        if created is None:
            raise Conflict(f"an operator named {username!r} already exists", param="username", code="admin_exists")
        await self.rows.audit(actor.username, "admin_create", f"admin:{username}", "", actor.ip)
        return created

    async def listed(self) -> list[AdminRecord]:
        return await self.rows.admins()

    async def disable(self, username: str, actor: Actor = CLI) -> None:
        """Disable the operator: no more sign-ins, and every session of theirs ends now."""
        if not await self.rows.disable_admin(username, time.time()):
            known = await self.rows.admin(username)
            if known is None:
                raise NotFound(f"no operator named {username!r}", code="admin_not_found", param="username")
            return  # already disabled: disabling again changes nothing
        await self.rows.audit(actor.username, "admin_disable", f"admin:{username}", "", actor.ip)

    async def sign_in(self, username: str, password: str, ip: str) -> NewSession:
        """A new session for the operator with this password; AuthenticationFailed (audited) otherwise."""
        admin = await self.rows.admin(username) if USERNAME.fullmatch(username) else None
        ok = await self._verify(admin, password[:PASSWORD_MAX])
        if admin is None or admin.disabled_at is not None or not ok:
            # Only a known username is recorded: what was typed may be a password in the wrong field.
            why = "unknown username" if admin is None else "disabled" if admin.disabled_at else "wrong password"
            await self.rows.audit(admin.username if admin else "(unknown)", "sign_in_failed", "console", why, ip)
            raise AuthenticationFailed("wrong username or password", code="invalid_credentials")
        if self._hasher.check_needs_rehash(admin.password_hash):  # the hasher's parameters were raised since
            await self.rows.rehash(admin.id, await asyncio.to_thread(self._hasher.hash, password))
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = time.time() + SESSION_SECONDS
        await self.rows.start_session(admin.id, token_hash(token), csrf, expires, ip)
        await self.rows.audit(admin.username, "sign_in", "console", "", ip)
        return NewSession(token, csrf, expires, admin.username)

    async def _verify(self, admin: AdminRecord | None, password: str) -> bool:
        if admin is None:  # hash anyway, so an unknown username takes as long as a wrong password
            self._decoy = self._decoy or await asyncio.to_thread(self._hasher.hash, secrets.token_urlsafe(16))
        stored = self._decoy if admin is None else admin.password_hash
        try:
            return bool(await asyncio.to_thread(self._hasher.verify, stored or "", password))
        except (VerificationError, InvalidHashError):
            return False

    async def session(self, token: str) -> SessionRecord | None:
        return await self.rows.session(token_hash(token), time.time()) if token else None

    async def sign_out(self, token: str, actor: Actor) -> None:
        await self.rows.end_session(token_hash(token))
        await self.rows.audit(actor.username, "sign_out", "console", "", actor.ip)

    async def audit_log(self, *, target: str = "", before: int = 0, limit: int = 50) -> list[AuditEntry]:
        return await self.rows.audit_log(target=target, before=before, limit=limit)


class OperatorActions:
    """Every operator action that is not about a running task's life: one operator use case each, written to the
    audit log. The console's actions and the command line's (``reelgate keys|credits|webhooks|accounts|callbacks``,
    as actor ``cli``) both come through here, so the audit page shows them alike."""

    def __init__(self, store: Store, *, on_callback_queued: Sequence[Callable[[str], None]] = ()) -> None:
        self.operators = Operators(store, on_callback_queued=on_callback_queued)
        self.log = ConsoleStore(store.db)

    async def _audit(self, actor: Actor, action: str, target: str, detail: str = "") -> None:
        await self.log.audit(actor.username, action, target, detail, actor.ip)

    async def grant_credits(self, actor: Actor, account: str, credits: int, note: str = "") -> int:
        granted = await self.operators.grant_credits(account, credits, note or f"granted by {actor.username}")
        await self._audit(actor, "grant_credits", f"account:{account}",
                          f"{format_credits(granted)} credits" + (f"; {note}" if note else ""))  # fmt: skip
        return granted

    async def create_key(self, actor: Actor, account: str, name: str, *, credits: int = 0, group: str | None = None,
                         new_account: bool = False) -> NewKey:  # fmt: skip
        """A new key for the account; with ``new_account`` the account is made if new (with ``group``) and
        granted ``credits``, as ``reelgate keys create`` does; else the account must exist, as in the console."""
        existed = await self.operators.store.accounts.account_id(account) is not None
        if not (existed or new_account):
            await self.operators.account_id(account)  # raises: no such account
        created = await self.operators.create_key(account, credits=credits, group=group, name=name)
        detail = [f"key {created.prefix} {name}".strip()]
        if not existed:
            detail.append(f"new account (group {group})" if group else "new account")
        if created.granted:
            detail.append(f"{format_credits(created.granted)} credits granted")
        await self._audit(actor, "create_key", f"account:{account}", "; ".join(detail))
        return created

    async def revoke_key(self, actor: Actor, account: str | None, prefix: str) -> str:
        """Revoke the key; with ``account`` only a key of that account (the console's form), without it any key
        (the command line names a key alone; its owner is looked up for the audit entry)."""
        if account is not None and not any(k.prefix == prefix and k.revoked_at is None
                                           for k in await self.operators.list_keys(account)):  # fmt: skip
            raise NotFound(f"account {account!r} has no active key {prefix!r}", code="api_key_not_found",
                           param="prefix")  # fmt: skip
        revoked = await self.operators.revoke_key(prefix)
        if account is None:
            owner = next((k.account for k in await self.operators.list_keys() if k.prefix == revoked), None)
            target = f"account:{owner}" if owner is not None else f"key:{revoked}"
        else:
            target = f"account:{account}"
        await self._audit(actor, "revoke_key", target, f"key {revoked}")
        return revoked

    async def set_limits(self, actor: Actor, account: str, rate: int | None, in_flight: int | None) -> Limits:
        for name, value in (("rate_per_minute", rate), ("max_in_flight", in_flight)):
            if value is not None and value < 1:
                raise InvalidRequest(f"{name} must be at least 1, or empty for the service default", param=name)
        limits = await self.operators.set_limits(account, rate_per_minute=rate, max_in_flight=in_flight)
        await self._audit(actor, "set_limits", f"account:{account}",
                          f"{rate or 'default'} requests/min, {in_flight or 'default'} in flight")  # fmt: skip
        return limits

    async def rotate_webhook_secret(self, actor: Actor, account: str) -> str:
        secret = await self.operators.rotate_webhook_secret(account)
        await self._audit(actor, "rotate_webhook_secret", f"account:{account}")
        return secret

    async def resend_callback(self, actor: Actor, task_id: str) -> dict[str, Any]:
        if not is_task_id(task_id):
            raise NotFound(f"no task {task_id[:80]!r} in any account", code="task_not_found", param="task_id")
        delivery = await self.operators.resend_callback(task_id)
        await self._audit(actor, "resend_callback", f"task:{task_id}", f"delivery {delivery.get('id')}")
        return delivery


class ConsoleActions(OperatorActions):
    """The console's actions: every :class:`OperatorActions` one, and cancelling any account's task."""

    def __init__(self, service: TaskService) -> None:
        # A resend from the console wakes this process's dispatcher at once, as the tenant's resend does.
        super().__init__(service.store, on_callback_queued=service.on_callback_queued)
        self.service = service

    async def cancel_task(self, actor: Actor, task_id: str) -> TaskRecord:
        """Cancel any account's task as its owner could: failed with request_cancelled, its credits released."""
        task = await self.operators.find_task(task_id)
        finish = Finish(task_id=task.id, status=FAILED, now=time.time(), guard="cancel", account_id=task.account_id,
                        error_code="request_cancelled", error_message="The task was cancelled by an operator.",
                        webhook_id=new_webhook_id())  # fmt: skip
        done = await self.service.finish(finish)
        if done is None:
            raise Conflict(f"task {task.id} can no longer be cancelled (status {task.status})", param="task_id",
                           code="task_not_cancellable")  # fmt: skip
        await self._audit(actor, "cancel_task", f"task:{task.id}", f"account {task.account}")
        return done
