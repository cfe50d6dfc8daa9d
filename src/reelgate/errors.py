"""One error tree: every failure a caller can cause maps to an HTTP status, a type, a code and a param."""

from __future__ import annotations

from typing import Any, Final

# The code of a media item that breaks a rule, by kind: the vendor's task error codes (contract 3.1, EvoLink's
# error list), used for a URL item (a failed task) and a Base64 item (400 at submit) alike, so a client handles one
# rule one way wherever it was found (docs/input-rules.md).
MEDIA_ERROR_CODES: Final = {"image": "image_processing_error", "video": "invalid_parameters"}


class ApiError(Exception):
    """An error answered to an API caller with the contract's error body."""

    status = 500
    type = "internal_server_error"
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        fallback_suggestion: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param
        self.details = details
        self.headers = headers or {}
        self.fallback_suggestion = fallback_suggestion

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "type": self.type}
        if self.param is not None:
            error["param"] = self.param
        if self.fallback_suggestion is not None:
            error["fallback_suggestion"] = self.fallback_suggestion
        if self.details:
            error["details"] = self.details
        return {"error": error}


class InvalidRequest(ApiError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_parameter"


class AuthenticationFailed(ApiError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class InsufficientQuota(ApiError):
    status = 402
    type = "insufficient_quota_error"
    code = "insufficient_credits"


class PermissionDenied(ApiError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(ApiError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class Conflict(ApiError):
    status = 409
    type = "conflict_error"
    code = "conflict"


class RequestTooLarge(ApiError):
    status = 413
    type = "request_too_large_error"
    code = "request_too_large"


class RangeNotSatisfiable(ApiError):
    status = 416
    type = "invalid_request_error"
    code = "range_not_satisfiable"


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(ApiError):
    status = 502
    type = "upstream_error"
    code = "upstream_unavailable"


class ServiceUnavailable(ApiError):
    status = 503
    type = "service_unavailable_error"
    code = "service_unavailable"


class TaskFailure(Exception):
    """A task ends as failed with one of the vendor's task error codes (contract 3.2)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Media checks run in the media pool's processes and their failures come back pickled; Exception's own
        # reduce would call __init__ with ``args`` (the message alone) and fail, which breaks the whole pool.
        return type(self), (self.code, self.message), self.__dict__


class MediaError(TaskFailure):
    """Reference media broke a rule; ``param`` names the offending item, e.g. ``refer_images[1]``."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(code, message)
        self.param = param


class StoreUnavailable(Exception):
    """The database cannot be reached right now; callers answer 503 and retry later."""
