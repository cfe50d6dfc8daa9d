"""The HTTP core of both clients: configuration, request building, retries with back-off, and error mapping."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from types import TracebackType
from typing import Any, Self

import httpx

from reelgate_client._errors import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    ReelgateError,
    retry_after,
    status_error,
)
from reelgate_client._version import __version__

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
# A longer Retry-After is handed to the caller (RateLimitError.retry_after) instead of blocking it silently.
MAX_RETRY_AFTER = 60.0
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

Timeout = float | httpx.Timeout
Params = dict[str, str | int | None]
log = logging.getLogger("reelgate_client")


def backoff(attempt: int) -> float:
    """Exponential back-off with jitter: about 0.5, 1, 2, 4, 8 s, never in lockstep with other clients."""
    return min(INITIAL_RETRY_DELAY * 2.0**attempt, MAX_RETRY_DELAY) * random.uniform(0.75, 1.0)


class BaseClient:
    """Settings and the retry decision; the sync and async clients add only the I/O."""

    def __init__(self, *, api_key: str | None, base_url: str | None, timeout: Timeout, max_retries: int) -> None:
        key = api_key if api_key is not None else os.environ.get("REELGATE_API_KEY", "")
        if not key:
            raise ReelgateError("no API key: pass api_key=... or set REELGATE_API_KEY")
        self.api_key = key
        self.base_url = (base_url or os.environ.get("REELGATE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.max_retries = max(0, max_retries)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, max_retries={self.max_retries})"

    def _build(
        self,
        http: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        params: Params | None,
        json: Any,
        idempotency_key: str | None,
    ) -> httpx.Request:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            "User-Agent": f"reelgate-python/{__version__}",
        }
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return http.build_request(
            method, self.base_url + path, params=query, json=json, headers=headers, timeout=self.timeout
        )

    def _after_failure(
        self, request: httpx.Request, attempt: int, response: httpx.Response | None, exc: httpx.TransportError | None
    ) -> float:
        """The delay before the next attempt, or raise the error this attempt ends the request with."""
        last = attempt >= self.max_retries
        if exc is not None:
            if last or isinstance(exc, httpx.UnsupportedProtocol):
                raise _connection_error(request, exc) from exc
            delay = backoff(attempt)
        else:
            assert response is not None
            error = status_error(response)
            if last or response.status_code not in RETRYABLE_STATUSES:
                raise error
            hinted = retry_after(response.headers)
            if hinted is not None and hinted > MAX_RETRY_AFTER:
                raise error
            delay = backoff(attempt) if hinted is None else hinted
        log.debug(
            "retrying %s %s in %.2f s (attempt %d of %d)",
            request.method,
            request.url.path,
            delay,
            attempt + 2,
            self.max_retries + 1,
        )
        return delay


def _connection_error(request: httpx.Request, exc: httpx.TransportError) -> APIConnectionError:
    where = f"{request.url.scheme}://{request.url.netloc.decode()}"
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{request.method} {request.url.path} to {where} timed out")
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol):
        return APIConnectionError(f"cannot reach {where}: {detail}")
    return APIConnectionError(f"the connection to {where} failed during {request.method} {request.url.path}: {detail}")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise APIResponseError(
            f"{response.request.method} {response.request.url.path} answered {response.status_code} "
            "with a body that is not JSON"
        ) from None


class SyncAPIClient(BaseClient):
    """Blocking requests over one ``httpx.Client`` (connection pooling); close it when done."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: Timeout,
        max_retries: int,
        http_client: httpx.Client | None,
    ) -> None:
        super().__init__(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=self.timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one logical request (retried on connection errors, 408/429/5xx) and return its JSON answer."""
        request = self._build(self._http, method, path, params, json, idempotency_key)
        attempt = 0
        while True:
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                delay = self._after_failure(request, attempt, None, exc)
            else:
                if response.is_success:
                    return _json(response)
                delay = self._after_failure(request, attempt, response, None)
            time.sleep(delay)
            attempt += 1

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncAPIClient(BaseClient):
    """Requests over one ``httpx.AsyncClient``; ``await client.close()`` (or ``async with``) when done."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: Timeout,
        max_retries: int,
        http_client: httpx.AsyncClient | None,
    ) -> None:
        super().__init__(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=self.timeout)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one logical request (retried on connection errors, 408/429/5xx) and return its JSON answer."""
        request = self._build(self._http, method, path, params, json, idempotency_key)
        attempt = 0
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                delay = self._after_failure(request, attempt, None, exc)
            else:
                if response.is_success:
                    return _json(response)
                delay = self._after_failure(request, attempt, response, None)
            await asyncio.sleep(delay)
            attempt += 1

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
