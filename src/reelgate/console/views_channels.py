"""Channels (vendor accounts: places in flight against their cap, waiting tasks, recent error codes, whether they
are in rotation and why not, and their resource-pack balances where the vendor tells them) and the audit log of
every operator action."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.console.context import Console
from reelgate.console.security import signed_in
from reelgate.providers import ChannelBalance, Provider, ReportsChannels


async def balances(providers: Iterable[Provider]) -> dict[str, ChannelBalance]:
    """Every reported channel's balance by slot key, asked of all channels at once: each provider bounds its own
    wait (and reuses a recent answer), so the page waits for the slowest channel's bound at most."""
    asked = [(p, s) for p in providers if isinstance(p, ReportsChannels) for s in p.channel_states()]
    found = await asyncio.gather(*(p.channel_balance(s.name) for p, s in asked))
    return {s.slot_key: b for (_, s), b in zip(asked, found, strict=True)}


def routes(console: Console) -> list[Route]:
    pages = console.pages
    providers = console.oversight.service.providers

    async def channels(request: Request) -> Response:
        shown, balance = await asyncio.gather(console.oversight.channels(), balances(providers.values()))
        return pages.render(request, "channels.html", title="Channels", channels=shown, balances=balance)

    async def audit(request: Request) -> Response:
        before = request.query_params.get("before", "")
        entries = await console.admins.audit_log(before=int(before) if before.isdigit() else 0, limit=50)
        return pages.render(request, "audit.html", title="Audit log", entries=entries)

    return [
        Route("/channels", signed_in(console.admins, channels), methods=["GET"]),
        Route("/audit", signed_in(console.admins, audit), methods=["GET"]),
    ]
