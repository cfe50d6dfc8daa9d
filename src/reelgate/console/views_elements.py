"""Elements: a gallery of every account's elements with thumbnails (the frontal image, or the middle frame of the
reference video), filtered by account and provider, and one element's page with its reference media."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.console.context import Console
from reelgate.console.security import flash, redirect, signed_in
from reelgate.errors import ApiError
from reelgate.store.console_reads import ElementFilter

PAGE = 24


def cursor(text: str) -> tuple[float, str] | None:
    """A gallery page's cursor, "<created_at>_<id>", or None when absent or malformed (from the newest)."""
    at, _, element_id = text.partition("_")
    try:
        return (float(at), element_id) if element_id.isdigit() else None
    except ValueError:
        return None


def routes(console: Console) -> list[Route]:
    pages, oversight = console.pages, console.oversight

    async def gallery(request: Request) -> Response:
        account = request.query_params.get("account", "").strip()
        provider = request.query_params.get("provider", "").strip()
        providers = sorted(oversight.service.providers)
        try:
            account_id = await oversight.account_id(account) if account else None
        except ApiError as exc:
            return pages.render(request, "elements.html", title="Elements", rows=[], account=account,
                                provider=provider, providers=providers, error=exc.message, status=404)  # fmt: skip
        before = cursor(request.query_params.get("before", ""))
        f = ElementFilter(account_id=account_id, provider=provider, before=before)
        rows = await oversight.elements(f, PAGE)
        more = f"{rows[-1]['created_at']!r}_{rows[-1]['id']}" if len(rows) == PAGE else ""
        return pages.render(request, "elements.html", title="Elements", rows=rows, account=account, provider=provider,
                            providers=providers, more=more, error="")  # fmt: skip

    async def element(request: Request) -> Response:
        try:
            row = await oversight.element(request.path_params["element_id"])
        except ApiError as exc:
            return flash(redirect("/console/elements"), request, exc.message, "error")
        return pages.render(request, "element.html", title=f"Element {row['id']}", e=row)

    return [
        Route("/elements", signed_in(console.admins, gallery), methods=["GET"]),
        Route("/elements/{element_id}", signed_in(console.admins, element), methods=["GET"]),
    ]
