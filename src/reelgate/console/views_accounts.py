"""Accounts: the list, and one account's balance, ledger, keys, limits, webhook secret, tasks and elements, with
the operator's actions on it (grant credits, create and revoke keys, set limits, rotate the webhook secret)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.console.context import Console
from reelgate.console.security import actor, flash, redirect, signed_in
from reelgate.domain import format_credits
from reelgate.errors import ApiError, InvalidRequest


def account_url(name: str) -> str:
    return f"/console/account?name={quote(name, safe='')}"


def to_milli(text: str) -> int:
    """Credits as typed ("5", "0.25") in thousandths; a refusal names the field."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal(0)
    if not value.is_finite() or value <= 0 or value > 10**12:
        raise InvalidRequest(f"credits must be a number more than 0, got {text[:40]!r}", param="credits")
    return int((value * 1000).to_integral_value())


def optional_int(text: str, name: str) -> int | None:
    if not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number, or empty for the default", param=name) from None


async def form_fields(request: Request, *names: str) -> list[str]:
    data = await request.form()
    return [str(data.get(n) or "") for n in names]


class AccountViews:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.pages, self.actions, self.oversight = console.pages, console.actions, console.oversight

    async def accounts(self, request: Request) -> Response:
        q, after = request.query_params.get("q", ""), request.query_params.get("after", "")
        rows = await self.oversight.accounts(q, after)
        return self.pages.render(request, "accounts.html", title="Accounts", rows=rows, q=q, after=after)

    async def page(self, request: Request, name: str, **shown: Any) -> Response:
        account = await self.oversight.account(name)
        audit = await self.console.admins.audit_log(target=f"account:{name}", limit=15)
        return self.pages.render(request, "account.html", title=f"Account {name}", a=account, audit=audit, **shown)

    async def account(self, request: Request) -> Response:
        try:
            return await self.page(request, request.query_params.get("name", ""))
        except ApiError as exc:
            return flash(redirect("/console/accounts"), request, exc.message, "error")

    async def act(self, request: Request, work: Callable[[str], Awaitable[str]]) -> Response:
        """Run one action on the form's account; back to the account page, saying what happened."""
        (name,) = await form_fields(request, "account")
        try:
            message = await work(name)
        except ApiError as exc:
            return flash(redirect(account_url(name)), request, exc.message, "error")
        return flash(redirect(account_url(name)), request, message)

    async def grant(self, request: Request) -> Response:
        amount, note = await form_fields(request, "credits", "note")

        async def work(name: str) -> str:
            granted = await self.actions.grant_credits(actor(request), name, to_milli(amount), note.strip()[:200])
            return f"Granted {format_credits(granted)} credits to {name}."

        return await self.act(request, work)

    async def revoke(self, request: Request) -> Response:
        (prefix,) = await form_fields(request, "prefix")

        async def work(name: str) -> str:
            return f"Revoked key {await self.actions.revoke_key(actor(request), name, prefix)}."

        return await self.act(request, work)

    async def limits(self, request: Request) -> Response:
        rate, in_flight = await form_fields(request, "rate_per_minute", "max_in_flight")

        async def work(name: str) -> str:
            set_ = await self.actions.set_limits(actor(request), name, optional_int(rate, "rate_per_minute"),
                                                 optional_int(in_flight, "max_in_flight"))  # fmt: skip
            return (f"Limits of {name}: {set_.rate_per_minute or 'default'} requests per minute, "
                    f"{set_.max_in_flight or 'default'} tasks in flight.")  # fmt: skip

        return await self.act(request, work)

    async def create_key(self, request: Request) -> Response:
        name, label = await form_fields(request, "account", "name")
        try:
            created = await self.actions.create_key(actor(request), name, label.strip()[:100])
        except ApiError as exc:
            return flash(redirect(account_url(name)), request, exc.message, "error")
        # Rendered in this answer, never redirected to: the key exists nowhere else in the clear.
        return await self.page(request, name, new_key=created.key)

    async def rotate(self, request: Request) -> Response:
        (name,) = await form_fields(request, "account")
        try:
            secret = await self.actions.rotate_webhook_secret(actor(request), name)
        except ApiError as exc:
            return flash(redirect(account_url(name)), request, exc.message, "error")
        return await self.page(request, name, new_secret=secret)


def routes(console: Console) -> list[Route]:
    v, guard = AccountViews(console), console.admins
    return [
        Route("/accounts", signed_in(guard, v.accounts), methods=["GET"]),
        Route("/account", signed_in(guard, v.account), methods=["GET"]),
        Route("/account/grant", signed_in(guard, v.grant), methods=["POST"]),
        Route("/account/keys", signed_in(guard, v.create_key), methods=["POST"]),
        Route("/account/keys/revoke", signed_in(guard, v.revoke), methods=["POST"]),
        Route("/account/limits", signed_in(guard, v.limits), methods=["POST"]),
        Route("/account/webhook-secret/rotate", signed_in(guard, v.rotate), methods=["POST"]),
    ]
