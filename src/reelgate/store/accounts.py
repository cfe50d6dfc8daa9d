"""Accounts, API keys, webhook secrets and credit grants: the operator-facing rows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from reelgate.ledger import GRANT, Balance
from reelgate.sealing import SecretBox
from reelgate.store.db import Conn, Database, Row


@dataclass(frozen=True)
class KeyOwner:
    """What an API key resolves to: enough to authorise and price a request without another read."""

    key_id: int
    account_id: int
    user_group: str
    revoked: bool
    expires_at: float | None
    rate_limit_per_minute: int | None
    max_in_flight: int | None


@dataclass(frozen=True)
class WebhookSecretRow:
    """An account's signing secret, opened, and when it was made (Unix seconds)."""

    secret: str
    created: float


@dataclass(frozen=True)
class AccountView:
    id: int
    name: str
    user_group: str
    balance: Balance
    in_flight: int
    ledger: list[dict[str, Any]]


class AccountStore:
    """Webhook secrets pass through ``box``: sealed on the way in, opened on the way out."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    async def ensure_account(self, name: str, group: str | None, new_secret: str) -> int:
        async def work(c: Conn) -> int:
            row = await c.one("SELECT id FROM accounts WHERE name = :name", {"name": name})
            if row is not None:
                if group is not None:
                    await c.run("UPDATE accounts SET user_group = :g WHERE id = :id", {"g": group, "id": row["id"]})
                return int(row["id"])
            created = await c.one(
                "INSERT INTO accounts (name, user_group, webhook_secret, created) "
                "VALUES (:name, :g, :secret, :now) RETURNING id",
                {"name": name, "g": group or "default", "secret": self.box.seal(new_secret), "now": time.time()},
            )
            assert created is not None
            return int(created["id"])

        return await self.db.write(work)

    async def account_id(self, name: str) -> int | None:
        row = await self.db.read(lambda c: c.one("SELECT id FROM accounts WHERE name = :n", {"n": name}))
        return None if row is None else int(row["id"])

    async def add_key(self, account_id: int, key_hash: str, prefix: str, name: str) -> int:
        async def work(c: Conn) -> int:
            row = await c.one(
                "INSERT INTO api_keys (account_id, key_hash, prefix, name, created) "
                "VALUES (:a, :h, :p, :n, :now) RETURNING id",
                {"a": account_id, "h": key_hash, "p": prefix, "n": name, "now": time.time()},
            )
            assert row is not None
            return int(row["id"])

        return await self.db.write(work)

    async def key_owner(self, key_hash: str) -> KeyOwner | None:
        row = await self.db.read(
            lambda c: c.one(
                "SELECT k.id, k.account_id, k.revoked_at, k.expires_at, a.user_group, "
                "a.rate_limit_per_minute, a.max_in_flight FROM api_keys k "
                "JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = :h",
                {"h": key_hash},
            )
        )
        if row is None:
            return None
        return KeyOwner(
            key_id=int(row["id"]),
            account_id=int(row["account_id"]),
            user_group=str(row["user_group"]),
            revoked=row["revoked_at"] is not None,
            expires_at=row["expires_at"],
            rate_limit_per_minute=row["rate_limit_per_minute"],
            max_in_flight=row["max_in_flight"],
        )

    async def list_keys(self, account_name: str | None) -> list[Row]:
        sql = (
            "SELECT k.id, k.prefix, k.name, k.created, k.revoked_at, a.name AS account FROM api_keys k "
            "JOIN accounts a ON a.id = k.account_id WHERE (:acct = '' OR a.name = :acct) ORDER BY k.id"
        )
        return await self.db.read(lambda c: c.all(sql, {"acct": account_name or ""}))

    async def revoke_key(self, prefix: str) -> int:
        sql = "UPDATE api_keys SET revoked_at = :now WHERE prefix = :p AND revoked_at IS NULL"
        return await self.db.write(lambda c: c.run(sql, {"now": time.time(), "p": prefix}))

    async def grant(self, account_id: int, amount: int, note: str) -> None:
        async def work(c: Conn) -> None:
            await c.run(
                "UPDATE accounts SET available = available + :amt WHERE id = :a",
                {"amt": amount, "a": account_id},
            )
            await c.run(
                "INSERT INTO ledger (account_id, task_id, kind, amount, note, created) "
                "VALUES (:a, NULL, :kind, :amt, :note, :now)",
                {"a": account_id, "kind": GRANT, "amt": amount, "note": note, "now": time.time()},
            )

        await self.db.write(work)

    async def set_limits(self, account_id: int, per_minute: int | None, in_flight: int | None) -> None:
        sql = "UPDATE accounts SET rate_limit_per_minute = :r, max_in_flight = :f WHERE id = :a"
        await self.db.write(lambda c: c.run(sql, {"r": per_minute, "f": in_flight, "a": account_id}))

    async def credits(self, account_id: int, key_id: int) -> tuple[Balance, int]:
        """The account's balance and what one of its keys has been charged, in millicredits (one read)."""

        async def work(c: Conn) -> tuple[Balance, int]:
            a = await c.one("SELECT available, reserved, captured FROM accounts WHERE id = :a", {"a": account_id})
            assert a is not None
            used = await c.one(
                "SELECT COALESCE(SUM(charged), 0) AS used FROM tasks WHERE account_id = :a AND api_key_id = :k "
                "AND charged IS NOT NULL",
                {"a": account_id, "k": key_id},
            )
            balance = Balance(int(a["available"]), int(a["reserved"]), int(a["captured"]))
            return balance, int(used["used"]) if used is not None else 0

        return await self.db.read(work)

    async def view(self, account_id: int, entries: int = 20) -> AccountView:
        async def work(c: Conn) -> AccountView:
            a = await c.one("SELECT * FROM accounts WHERE id = :a", {"a": account_id})
            assert a is not None
            rows = await c.all(
                "SELECT id, task_id, kind, amount, note, created FROM ledger WHERE account_id = :a "
                "ORDER BY id DESC LIMIT :n",
                {"a": account_id, "n": entries},
            )
            balance = Balance(int(a["available"]), int(a["reserved"]), int(a["captured"]))
            return AccountView(
                int(a["id"]),
                str(a["name"]),
                str(a["user_group"]),
                balance,
                int(a["in_flight"]),
                [dict(r) for r in rows],
            )

        return await self.db.read(work)

    async def ledger_sums(self, account_id: int) -> dict[str, int]:
        rows = await self.db.read(
            lambda c: c.all(
                "SELECT kind, SUM(amount) AS total FROM ledger WHERE account_id = :a GROUP BY kind",
                {"a": account_id},
            )
        )
        return {str(r["kind"]): int(r["total"]) for r in rows}

    async def webhook_secret(self, account_id: int) -> str:
        return (await self.webhook_secret_record(account_id)).secret

    async def webhook_secret_record(self, account_id: int) -> WebhookSecretRow:
        """The account's signing secret (opened) and when it was made."""
        # No date of its own: the secret is the one the account was made with.
        sql = "SELECT webhook_secret, COALESCE(webhook_secret_created, created) AS made FROM accounts WHERE id = :a"
        row = await self.db.read(lambda c: c.one(sql, {"a": account_id}))
        assert row is not None
        return WebhookSecretRow(self.box.open(str(row["webhook_secret"])), float(row["made"]))

    async def set_webhook_secret(self, account_id: int, secret: str, now: float | None = None) -> float:
        """Replace the signing secret (sealed), dated ``now`` (default: the current time); returns that date."""
        made = time.time() if now is None else now
        sql = "UPDATE accounts SET webhook_secret = :s, webhook_secret_created = :t WHERE id = :a"
        sealed = self.box.seal(secret)
        await self.db.write(lambda c: c.run(sql, {"s": sealed, "t": made, "a": account_id}))
        return made
