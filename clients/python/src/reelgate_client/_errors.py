"""The client's exception tree, and the one place that maps an HTTP error answer to its exception class."""

from __future__ import annotations

import email.utils
import time
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from reelgate_client._types import Task


class ReelgateError(Exception):
    """Base of every error this client raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MediaInputError(ReelgateError, ValueError):
    """A media argument is neither an http(s) URL, Base64 data, bytes, nor a readable local file."""


class APIConnectionError(ReelgateError):
    """The server could not be reached, or the connection broke before an answer arrived (after retries)."""


class APITimeoutError(APIConnectionError):
    """The request timed out (after retries)."""


class APIResponseError(ReelgateError):
    """A 2xx answer whose body is not the JSON the contract promises."""


class APIStatusError(ReelgateError):
    """The server answered with an error status; the contract's error body is parsed into attributes."""

    def __init__(self, response: httpx.Response, body: dict[str, Any]) -> None:
        self.response = response
        self.status_code = response.status_code
        self.body = body
        raw_error = body.get("error")
        error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        self.code: str | None = _str_or_none(error.get("code"))
        self.type: str | None = _str_or_none(error.get("type"))
        self.param: str | None = _str_or_none(error.get("param"))
        self.fallback_suggestion: str | None = _str_or_none(error.get("fallback_suggestion"))
        details = error.get("details") if isinstance(error.get("details"), list) else None
        self.details: list[dict[str, Any]] = [d for d in details or [] if isinstance(d, dict)]
        message = _str_or_none(error.get("message")) or f"HTTP {response.status_code}: {response.text[:200]}"
        super().__init__(message)

    def __str__(self) -> str:
        where = [part for part in (self.code, f"param {self.param}" if self.param else None) if part]
        return f"{self.message} ({', '.join(where)})" if where else self.message


class BadRequestError(APIStatusError):
    """400: a malformed request or an invalid field (``param`` names it)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, unknown, revoked or expired."""


class InsufficientQuotaError(APIStatusError):
    """402: the account has too few credits for this request."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or route."""


class NotFoundError(APIStatusError):
    """404: unknown (or another tenant's) task, element or route."""


class ConflictError(APIStatusError):
    """409: an Idempotency-Key reused with another body, or a task that can no longer be cancelled."""


class RequestTooLargeError(APIStatusError):
    """413: the request body is over the server's limit (send large media as URLs)."""


class RateLimitError(APIStatusError):
    """429: the per-key rate limit; ``retry_after`` holds the server's hint in seconds, when it sent one."""

    def __init__(self, response: httpx.Response, body: dict[str, Any]) -> None:
        super().__init__(response, body)
        self.retry_after = retry_after(response.headers)


class InternalServerError(APIStatusError):
    """500 (or another unexpected 5xx): a server bug; the server logged it."""


class UpstreamError(APIStatusError):
    """502: the upstream vendor was unreachable."""


class ServiceUnavailableError(APIStatusError):
    """503: the server is shutting down or its store is unavailable; retry shortly."""


class TaskFailedError(ReelgateError):
    """``wait`` saw the task end as failed; ``task.error`` holds the task error code and message."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.code = task.error.code if task.error else "unknown_error"
        detail = task.error.message if task.error and task.error.message else "no message"
        super().__init__(f"task {task.id} failed: {detail} ({self.code})")


class WaitTimeoutError(ReelgateError):
    """``wait`` gave up at its time limit; ``task`` is the last state seen (still pending or processing)."""

    def __init__(self, task: Task, timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        super().__init__(
            f"task {task.id} is still {task.status} ({task.progress}%) after waiting {timeout:g} s; "
            "wait again or check it later"
        )


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientQuotaError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: RequestTooLargeError,
    429: RateLimitError,
    500: InternalServerError,
    502: UpstreamError,
    503: ServiceUnavailableError,
}


def status_error(response: httpx.Response) -> APIStatusError:
    """The exception for an error answer: one class per status, the contract's error body as attributes."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    cls = _STATUS_ERRORS.get(status, InternalServerError if status >= 500 else APIStatusError)
    return cls(response, body)


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
