"""Signing in and out: the sign-in form (double-submit CSRF token, rate-limited, every attempt audited)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.console.context import Console
from reelgate.console.security import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    actor,
    check_sign_in_rate,
    clear_cookie,
    client_ip,
    csrf_refused,
    new_sign_in_token,
    redirect,
    set_cookie,
    signed_in,
    tokens_match,
)
from reelgate.console_ops import SESSION_SECONDS
from reelgate.errors import AuthenticationFailed, RateLimited


def safe_next(target: str) -> str:
    """Where to go after signing in: a console page only, never another site (``//host`` or a scheme)."""
    if target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/"


def routes(console: Console) -> list[Route]:
    pages, admins = console.pages, console.admins

    def form(request: Request, *, error: str = "", status: int = 200, username: str = "") -> Response:
        token = new_sign_in_token()
        response = pages.render(request, "sign_in.html", status=status, token=token, error=error, username=username,
                                next=safe_next(request.query_params.get("next", "")), title="Sign in")  # fmt: skip
        set_cookie(response, request, SIGN_IN_COOKIE, token, 3600)
        return response

    async def sign_in_page(request: Request) -> Response:
        if await admins.session(request.cookies.get(SESSION_COOKIE, "")) is not None:
            return redirect("/console/")
        return form(request)

    async def sign_in(request: Request) -> Response:
        data = await request.form()
        given, username, password = (str(data.get(k) or "") for k in ("token", "username", "password"))
        if not tokens_match(given, request.cookies.get(SIGN_IN_COOKIE, "")):
            return csrf_refused()
        try:
            await check_sign_in_rate(console.limiter, client_ip(request), username)
            session = await admins.sign_in(username.strip(), password, client_ip(request))
        except RateLimited as exc:
            wait = exc.headers.get("Retry-After", "60")
            response = form(request, error=f"Too many sign-in attempts: try again in {wait} s.", status=429,
                            username=username)  # fmt: skip
            response.headers.update(exc.headers)
            return response
        except AuthenticationFailed:
            return form(request, error="Wrong username or password.", status=401, username=username)
        response = redirect(safe_next(str(data.get("next") or "")))
        set_cookie(response, request, SESSION_COOKIE, session.token, SESSION_SECONDS)
        clear_cookie(response, request, SIGN_IN_COOKIE)
        return response

    async def sign_out(request: Request) -> Response:
        await admins.sign_out(request.cookies.get(SESSION_COOKIE, ""), actor(request))
        response = redirect("/console/sign-in")
        clear_cookie(response, request, SESSION_COOKIE)
        return response

    return [
        Route("/sign-in", sign_in_page, methods=["GET"]),
        Route("/sign-in", sign_in, methods=["POST"]),
        Route("/sign-out", signed_in(admins, sign_out), methods=["POST"]),
    ]
