"""Request and response helpers shared by every route: orjson bodies, bounded body reads, the error body."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from reelgate.errors import ApiError, InvalidRequest, RequestTooLarge, ServiceUnavailable, StoreUnavailable

log = logging.getLogger("reelgate.api")
Endpoint = Callable[[Request], Awaitable[Response]]
ACCOUNT_SCOPE_KEY = "reelgate.account_id"  # set on the request's scope once its key is known, for the access line


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(exc: ApiError) -> Response:
    return JSON(exc.body(), status_code=exc.status, headers=exc.headers or None)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body's bytes, refused early when it is too big."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise RequestTooLarge(f"request body is larger than the {max_bytes} byte limit")
    chunks, size = [], 0
    try:
        # A client that trickles its body is answered 408 and cut off by the protocol (api/server.py).
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise RequestTooLarge(f"request body is larger than the {max_bytes} byte limit")
            chunks.append(chunk)
    except ClientDisconnect:  # gone, or cut off by the body deadline: the answer goes nowhere, nothing to log
        raise InvalidRequest("the client closed the connection before its body arrived",
                             code="client_disconnected") from None  # fmt: skip
    return b"".join(chunks)


def guarded(endpoint: Endpoint) -> Endpoint:
    """Turn every failure of an endpoint into the contract's error body; never leak a stack trace."""

    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ApiError as exc:
            return error_response(exc)
        except StoreUnavailable as exc:
            log.warning("store unavailable", extra={"error": str(exc)})
            return error_response(ServiceUnavailable("the service is temporarily unavailable; retry shortly",
                                                     headers={"Retry-After": "1"}))  # fmt: skip
        except Exception:
            log.exception("unhandled error", extra={"path": request.url.path})
            return error_response(ApiError("an internal error occurred; it has been logged"))

    wrapper.__name__ = endpoint.__name__
    wrapper.__doc__ = endpoint.__doc__
    return wrapper


MAX_QUERY_VALUE = 256  # more than any documented parameter needs: the longest is a task id of 34 characters
_ASCII_DIGITS = re.compile(r"[0-9]{1,12}")  # str.isdigit() also takes '²' and '١', and int() of 5,000 digits raises


def query_value(request: Request, name: str, max_length: int = MAX_QUERY_VALUE) -> str | None:
    """One query parameter as sent, or None when absent: at most once, not empty, bounded, no control characters.

    Checked before any value reaches a database: PostgreSQL refuses a NUL in text, and a value that means one thing
    here must not mean another in SQL. Undocumented parameters are never read, so they stay ignored.
    """
    values = request.query_params.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"{name} must be given at most once", param=name)
    raw = values[0]
    if not raw:
        raise InvalidRequest(f"{name} must not be empty; leave it out instead", param=name)
    if len(raw) > max_length:
        raise InvalidRequest(f"{name} must be at most {max_length} characters", param=name)
    # isprintable() is False for control, format, separator (but the ASCII space) and unassigned characters;
    # U+FFFD is what bytes that are not UTF-8 decode to.
    if not raw.isprintable() or "\ufffd" in raw:
        raise InvalidRequest(f"{name} must be UTF-8 text without control or invisible characters", param=name)
    return raw


def query_int(request: Request, name: str, default: int, low: int = 1, high: int = 100) -> int:
    raw = query_value(request, name)
    if raw is None:
        return default
    if not _ASCII_DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}", param=name)
    return int(raw)


def query_choice(request: Request, name: str, choices: Collection[str]) -> str | None:
    raw = query_value(request, name)
    if raw is not None and raw not in choices:
        raise InvalidRequest(f"{name} must be one of {', '.join(choices)}", param=name)
    return raw


def query_cursor(request: Request, name: str, valid: Callable[[str], object], shape: str) -> str | None:
    """A pagination cursor: the ``last_id`` of a previous page, so it must look like an id (ASCII only)."""
    raw = query_value(request, name, max_length=64)
    if raw is not None and not (raw.isascii() and valid(raw)):
        raise InvalidRequest(f"{name} must be {shape}: the last_id of a previous page", param=name)
    return raw
