"""Who is signed in, and whether a form may be trusted: the session cookie, CSRF tokens, sign-in rate limits.

- The session cookie holds a random token (its hash is the stored session): HttpOnly, SameSite=Strict, Path=/console,
  and Secure whenever the request came over HTTPS (the scheme, or ``X-Forwarded-Proto: https`` from a proxy that
  ends TLS; a forged header can only make the cookie stricter).
- Every form of a signed-in page carries its session's CSRF token; the sign-in form, before any session, a token
  also set in a cookie of its own (double submit). A POST without the right token is refused with 403.
- Sign-in attempts are limited per client address and per username through the API's rate limiter (shared
  through Redis when configured), in a key space of their own: negative ids, which no API key has.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reelgate.console_ops import Actor, Admins
from reelgate.ratelimit import RateLimiter

SESSION_COOKIE = "reelgate_console"
SIGN_IN_COOKIE = "reelgate_console_signin"  # the sign-in form's double-submit token
FLASH_COOKIE = "reelgate_console_flash"
COOKIE_PATH = "/console"
SIGN_IN_PER_IP = 30  # attempts a minute from one address
SIGN_IN_PER_USERNAME = 6  # attempts a minute at one username, from anywhere
Handler = Callable[[Request], Awaitable[Response]]


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, secure=is_https(request), httponly=True,
                        samesite="strict")  # fmt: skip


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, secure=is_https(request), httponly=True, samesite="strict")


def tokens_match(given: str, expected: str) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def limiter_key(kind: str, value: str) -> int:
    """A rate-limit bucket id for sign-ins: negative, so it never meets an API key's (positive) id."""
    digest = hashlib.blake2b(f"console-{kind}:{value}".encode(), digest_size=7).digest()
    return -1 - int.from_bytes(digest, "big")


async def check_sign_in_rate(limiter: RateLimiter, ip: str, username: str) -> None:
    """Raise RateLimited (with Retry-After) when this address or this username tried too often."""
    await limiter.check(limiter_key("ip", ip), SIGN_IN_PER_IP)
    await limiter.check(limiter_key("user", username.lower()[:64]), SIGN_IN_PER_USERNAME)


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def flash(response: Response, request: Request, message: str, kind: str = "ok") -> Response:
    """Show ``message`` once, on the next page this browser opens (a cookie, so a redirect keeps it)."""
    set_cookie(response, request, FLASH_COOKIE, quote(f"{kind}:{message[:500]}"), 120)
    return response


def take_flash(request: Request) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    kind, _, message = unquote(raw).partition(":")
    return ("error" if kind == "error" else "ok"), message


def actor(request: Request) -> Actor:
    return Actor(request.state.session.username, client_ip(request))


def signed_in(admins: Admins, handler: Handler) -> Handler:
    """Run ``handler`` for a signed-in operator (``request.state.session``); send anyone else to the sign-in page.
    A POST must carry the session's CSRF token in its ``csrf`` field, else 403 and nothing is done."""

    async def guarded(request: Request) -> Response:
        session = await admins.session(request.cookies.get(SESSION_COOKIE, ""))
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            back = target if request.method == "GET" else "/console/"
            return redirect(f"/console/sign-in?next={quote(back, safe='')}")
        if request.method == "POST":
            form = await request.form()
            given = form.get("csrf")
            if not tokens_match(given if isinstance(given, str) else "", session.csrf):
                return csrf_refused()
        request.state.session = session
        request.state.flash = take_flash(request)
        response = await handler(request)
        if request.state.flash is not None:
            clear_cookie(response, request, FLASH_COOKIE)
        return response

    return guarded


def csrf_refused() -> Response:
    return Response("Refused: this form was not sent from a page of this console's session (CSRF token missing or "
                    "wrong). Reload the page and try again.\n", status_code=403, media_type="text/plain",
                    headers={"Cache-Control": "no-store"})  # fmt: skip
