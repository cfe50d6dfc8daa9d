"""Operator commands: API keys, credits, webhook secrets and per-account limits."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from reelgate.auth import hash_key, key_prefix, new_api_key
from reelgate.callbacks import new_secret
from reelgate.cli.common import account_id, credits_to_milli, with_store
from reelgate.domain import format_credits

if TYPE_CHECKING:
    from reelgate.store.sql import Store

Account = Annotated[str, typer.Option("--account", help="Account name.")]


def _keys() -> typer.Typer:
    keys = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys.")

    @keys.command("create")
    def create(account: Account, credits: Annotated[str, typer.Option(help="Credits to grant.")] = "",
               group: Annotated[str | None, typer.Option(help="User group (pricing).")] = None,
               name: Annotated[str, typer.Option(help="A label for the key.")] = "") -> None:  # fmt: skip
        """Create the account if new, grant credits if given, and print the new key alone on the last line."""
        amount = credits_to_milli(credits) if credits and credits.strip() not in ("0", "0.0") else 0
        key = new_api_key()

        async def work(store: Store) -> None:
            acct = await store.accounts.ensure_account(account, group, new_secret())
            if amount:
                await store.accounts.grant(acct, amount, "granted with key creation")
            await store.accounts.add_key(acct, hash_key(key), key_prefix(key), name)

        with_store(work)
        typer.echo(f"created a key for account {account!r} (shown once; store it now):", err=True)
        typer.echo(key)

    @keys.command("list")
    def list_keys(account: Annotated[str, typer.Option("--account")] = "") -> None:
        """List keys (prefixes only; keys are stored as hashes)."""
        rows = with_store(lambda store: store.accounts.list_keys(account or None))
        table = Table("prefix", "account", "name", "created", "revoked")
        for r in rows:
            revoked = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["revoked_at"])) if r["revoked_at"] else ""
            created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["created"]))
            table.add_row(r["prefix"], r["account"], r["name"], created, revoked)
        Console().print(table)

    @keys.command("revoke")
    def revoke(
        prefix: Annotated[str, typer.Argument(help="The key's prefix as shown by 'keys list', or the key.")],
    ) -> None:
        """Revoke a key; every process stops accepting it within the key cache TTL (1 s by default)."""
        n = with_store(lambda store: store.accounts.revoke_key(key_prefix(prefix)))
        if not n:
            typer.echo(f"error: no active key with prefix {key_prefix(prefix)!r}", err=True)
            raise typer.Exit(1)
        typer.echo(f"revoked {key_prefix(prefix)}")

    return keys


def _credits() -> typer.Typer:
    credits = typer.Typer(no_args_is_help=True, help="Grant credits and show balances and the ledger.")

    @credits.command("grant")
    def grant(account: Account, amount: Annotated[str, typer.Argument(help="Credits to add.")]) -> None:
        """Add credits to an account."""
        milli = credits_to_milli(amount)

        async def work(store: Store) -> None:
            await store.accounts.grant(await account_id(store, account), milli, "operator grant")

        with_store(work)
        typer.echo(f"granted {format_credits(milli)} credits to {account}")

    @credits.command("show")
    def show(account: Account, entries: int = 20) -> None:
        """Balance, reserved and captured credits, and the recent ledger."""

        async def work(store: Store) -> None:
            view = await store.accounts.view(await account_id(store, account), entries)
            b = view.balance
            console = Console()
            console.print(f"account {view.name} (group {view.user_group}): available {format_credits(b.available)}, "
                          f"reserved {format_credits(b.reserved)}, captured {format_credits(b.captured)}, "
                          f"tasks in flight {view.in_flight}")  # fmt: skip
            table = Table("id", "time", "kind", "credits", "task", "note")
            for e in view.ledger:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["created"]))
                table.add_row(str(e["id"]), when, e["kind"], str(format_credits(e["amount"])), e["task_id"] or "",
                              e["note"])  # fmt: skip
            console.print(table)

        with_store(work)

    return credits


def _webhooks() -> typer.Typer:
    hooks = typer.Typer(no_args_is_help=True, help="Show or rotate an account's webhook signing secret.")

    @hooks.command("secret")
    def secret(account: Account) -> None:
        """Print the account's signing secret alone on the last line."""

        async def work(store: Store) -> str:
            return await store.accounts.webhook_secret(await account_id(store, account))

        typer.echo(with_store(work))

    @hooks.command("rotate")
    def rotate(account: Account) -> None:
        """Replace the signing secret; callbacks sent from now on use the new one (printed on the last line)."""
        fresh = new_secret()

        async def work(store: Store) -> None:
            await store.accounts.set_webhook_secret(await account_id(store, account), fresh)

        with_store(work)
        typer.echo(fresh)

    return hooks


def _accounts() -> typer.Typer:
    accounts = typer.Typer(no_args_is_help=True, help="Per-account limits.")

    @accounts.command("limits")
    def limits(account: Account,
               rate_per_minute: Annotated[int | None, typer.Option(help="Requests per minute per key.")] = None,
               max_in_flight: Annotated[int | None, typer.Option(help="Tasks pending or processing at once.")] = None,
               ) -> None:  # fmt: skip
        """Set the account's rate limit and in-flight cap (unset = the service defaults)."""

        async def work(store: Store) -> None:
            await store.accounts.set_limits(await account_id(store, account), rate_per_minute, max_in_flight)

        with_store(work)
        typer.echo(f"limits for {account}: {rate_per_minute or 'default'} requests/min, "
                   f"{max_in_flight or 'default'} tasks in flight")  # fmt: skip

    return accounts


def admin_apps() -> dict[str, typer.Typer]:
    return {"keys": _keys(), "credits": _credits(), "webhooks": _webhooks(), "accounts": _accounts()}
