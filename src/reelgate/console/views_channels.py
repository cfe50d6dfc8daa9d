"""Channels (vendor accounts: places in flight against their cap, waiting tasks, recent error codes, whether they
are in rotation and why not) and the audit log of every operator action."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.console.context import Console
from reelgate.console.security import signed_in


def routes(console: Console) -> list[Route]:
    pages = console.pages

    async def channels(request: Request) -> Response:
        return pages.render(request, "channels.html", title="Channels", channels=await console.oversight.channels())

    async def audit(request: Request) -> Response:
        before = request.query_params.get("before", "")
        entries = await console.admins.audit_log(before=int(before) if before.isdigit() else 0, limit=50)
        return pages.render(request, "audit.html", title="Audit log", entries=entries)

    return [
        Route("/channels", signed_in(console.admins, channels), methods=["GET"]),
        Route("/audit", signed_in(console.admins, audit), methods=["GET"]),
    ]
