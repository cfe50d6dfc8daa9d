"""Async client for Kling's task APIs (advanced-custom-elements and the video endpoints) and the account's
resource packs (``/account/costs``): JWT auth, one envelope parser, error classes."""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

from reelgate.providers.kling.codes import (
    ACCOUNT_CODES,
    AUTH_CODES,
    BAD_PARAM_CODES,
    KNOWN_CODES,
    POLICY_CODES,
    RETRYABLE_CODES,
    TaskState,
    map_status,
)

ELEMENTS_PATH = "/v1/general/advanced-custom-elements"
DELETE_PATH = "/v1/general/delete-elements"
COSTS_PATH = "/account/costs"
TOKEN_LIFETIME = 1800
TOKEN_NOT_BEFORE = 5
TOKEN_REFRESH_MARGIN = 300

_ALREADY_DELETED = re.compile(r"\balready\s+(?:been\s+|be\s+)?deleted\b", re.IGNORECASE)


class _TokenCache:
    """The last JWT made and when it was issued; a lock keeps concurrent callers from racing to refresh."""

    __slots__ = ("_lock", "_issued", "_token")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._issued = 0.0
        self._token = ""

    def get_or_make(self, now: float, make: Callable[[int], str]) -> str:
        with self._lock:
            fresh = self._issued <= now < self._issued + TOKEN_LIFETIME - TOKEN_REFRESH_MARGIN
            if not self._token or not fresh:
                self._token = make(int(now))
                self._issued = int(now)
            return self._token


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hs256_jwt(claims: dict[str, Any], secret: str) -> str:
    """Sign ``claims`` as a compact HS256 JWT.

    Signed here rather than with PyJWT because PyJWT >= 2.10 warns on HMAC keys under 32 bytes and the key
    length is the vendor's choice, not ours.
    """
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


@dataclass(frozen=True, repr=False)
class KlingCredentials:
    """Either an access/secret key pair (JWT auth) or a plain API key; never both."""

    access_key: str = ""
    secret_key: str = ""
    api_key: str = ""
    _cache: _TokenCache = field(default_factory=_TokenCache, init=False, compare=False)

    def __post_init__(self) -> None:
        pair = bool(self.access_key) and bool(self.secret_key)
        if bool(self.access_key) != bool(self.secret_key):
            raise ValueError("Kling credentials need both access_key and secret_key")
        if pair == bool(self.api_key):
            raise ValueError("Kling credentials need either access_key + secret_key or api_key, not both")

    def bearer(self, now: float) -> str:
        """The ``Authorization: Bearer`` token: the API key, or a JWT reused until 5 minutes before exp."""
        if self.api_key:
            return self.api_key
        return self._cache.get_or_make(now, self._make_jwt)

    def _make_jwt(self, now: int) -> str:
        claims = {"iss": self.access_key, "exp": now + TOKEN_LIFETIME, "nbf": now - TOKEN_NOT_BEFORE}
        return hs256_jwt(claims, self.secret_key)

    def __repr__(self) -> str:
        kind = "api_key" if self.api_key else f"access_key={self.access_key[:4]}..."
        return f"KlingCredentials({kind}, secrets hidden)"


@dataclass(frozen=True)
class KlingVideo:
    """One result video of a video task: Kling's id, its (expiring) URL, the watermarked variant, seconds as text."""

    id: str
    url: str
    watermark_url: str | None
    duration: str


@dataclass(frozen=True)
class KlingTask:
    """One Kling task (an element or a video) as Kling reports it; ``raw`` is the envelope's ``data`` object."""

    task_id: str
    status: str
    status_msg: str
    external_task_id: str | None
    element_ids: list[int]
    raw: dict[str, Any]
    videos: list[KlingVideo] = field(default_factory=list)

    @property
    def state(self) -> TaskState:
        return map_status(self.status)


@dataclass(frozen=True)
class KlingResourcePack:
    """One resource pack of the account, as ``/account/costs`` reports it; times are Kling's Unix milliseconds.

    ``kind`` is ``decreasing_total`` (a total used up) or ``constant_period`` (a quantity per period); ``status`` is
    ``toBeOnline``, ``online``, ``expired`` or ``runOut``.
    """

    name: str
    id: str
    kind: str
    total: float
    remaining: float
    purchase_ms: int | None
    effective_ms: int | None
    invalid_ms: int | None
    status: str


class KlingError(Exception):
    """A Kling call failed; ``message`` is Kling's own text, never shown to our users as is."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        request_sent: bool = True,
        ambiguous: bool = False,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.request_sent = request_sent
        self.request_id = request_id
        self._ambiguous = ambiguous

    def __str__(self) -> str:
        return f"Kling error code={self.code} http={self.http_status}: {self.message}"

    def __repr__(self) -> str:
        return f"KlingError(code={self.code!r}, http_status={self.http_status!r}, message={self.message!r})"

    def _unknown_code(self) -> bool:
        return self.code not in KNOWN_CODES

    @property
    def is_auth(self) -> bool:
        return self.code in AUTH_CODES or (self._unknown_code() and self.http_status == 401)

    @property
    def is_account(self) -> bool:
        return self.code in ACCOUNT_CODES or (self._unknown_code() and self.http_status == 403)

    @property
    def is_not_found(self) -> bool:
        """Only 1203: 1202 (bad method) and a code-less 404 mean our URL is wrong, not that a task is gone."""
        return self.code == 1203

    @property
    def is_policy(self) -> bool:
        return self.code in POLICY_CODES

    @property
    def is_bad_params(self) -> bool:
        return self.code in BAD_PARAM_CODES

    @property
    def is_ambiguous(self) -> bool:
        """The request may have reached Kling but we got no usable answer: look it up before repeating it."""
        return self._ambiguous

    @property
    def is_retryable(self) -> bool:
        """Safe to repeat unchanged after a back-off. Ambiguous failures are not: look the task up first."""
        if self._ambiguous:
            return False
        if not self.request_sent:
            return True
        if not self._unknown_code():
            return self.code in RETRYABLE_CODES
        return self.http_status is not None and (self.http_status == 429 or self.http_status >= 500)


@dataclass(frozen=True)
class KlingAnswer:
    """One HTTP answer from Kling, read in full."""

    status_code: int
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


def _malformed(what: str, response: KlingAnswer) -> KlingError:
    # A 2xx we cannot read may still mean Kling acted on the request: callers must look it up, not repeat it.
    return KlingError(f"malformed Kling answer: {what}", http_status=response.status_code, ambiguous=True)


def _decode(response: KlingAnswer) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)  # stdlib json keeps 64-bit ids as exact ints
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def unwrap(response: KlingAnswer) -> Any:
    """The envelope's ``data`` when ``code`` is 0; otherwise the matching :class:`KlingError`."""
    status = response.status_code
    envelope = _decode(response)
    if envelope is None:
        if response.is_success:
            raise _malformed("not a JSON object", response)
        raise KlingError(f"non-JSON answer with HTTP {status}", http_status=status)
    code = envelope.get("code")
    request_id = envelope.get("request_id")
    message = str(envelope.get("message") or "")
    rid = request_id if isinstance(request_id, str) else None
    if not isinstance(code, int) or isinstance(code, bool):
        if response.is_success:
            raise _malformed("envelope without an integer code", response)
        raise KlingError(message or f"HTTP {status}", http_status=status, request_id=rid)
    if code != 0:
        raise KlingError(message, code=code, http_status=status, request_id=rid)
    if not response.is_success:
        raise KlingError(f"code 0 with HTTP {status}", http_status=status, request_id=rid)
    return envelope.get("data")


def _element_id(value: Any, response: KlingAnswer) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,20}", value):
        return int(value)
    raise _malformed(f"element_id is {type(value).__name__}, not an integer", response)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_task(data: Any, response: KlingAnswer) -> KlingTask:
    """A :class:`KlingTask` from an envelope's ``data``; a float element id is refused (digits were lost)."""
    if not isinstance(data, dict) or not data.get("task_id"):
        raise _malformed("task data without task_id", response)
    info = _object(data.get("task_info"))
    result = _object(data.get("task_result"))
    elements = result.get("elements") or []
    if not isinstance(elements, list) or not all(isinstance(e, dict) for e in elements):
        raise _malformed("task_result.elements is not a list of objects", response)
    videos = result.get("videos") or []
    if not isinstance(videos, list) or not all(isinstance(v, dict) for v in videos):
        raise _malformed("task_result.videos is not a list of objects", response)
    external = info.get("external_task_id")
    return KlingTask(
        task_id=str(data["task_id"]),
        status=str(data.get("task_status") or ""),
        status_msg=str(data.get("task_status_msg") or ""),
        external_task_id=str(external) if external else None,
        element_ids=[_element_id(e.get("element_id"), response) for e in elements],
        raw=data,
        videos=[_video(v) for v in videos],
    )


def _video(value: dict[str, Any]) -> KlingVideo:
    watermark = value.get("watermark_url")
    return KlingVideo(id=str(value.get("id") or ""), url=str(value.get("url") or ""),
                      watermark_url=str(watermark) if watermark else None,
                      duration=str(value.get("duration") or ""))  # fmt: skip


def _number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"not a number: {type(value).__name__}")


def _millis(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def parse_resource_packs(data: Any, response: KlingAnswer) -> list[KlingResourcePack]:
    """The packs of an ``/account/costs`` answer's ``data``; its inner ``code``, when not 0, is a Kling error."""
    if not isinstance(data, dict):
        raise KlingError("malformed Kling answer: costs data is not an object", http_status=response.status_code)
    inner = data.get("code", 0)
    if inner != 0:
        raise KlingError(str(data.get("msg") or ""), code=inner if isinstance(inner, int) else None,
                         http_status=response.status_code)  # fmt: skip
    infos = data.get("resource_pack_subscribe_infos") or []
    if not isinstance(infos, list) or not all(isinstance(i, dict) for i in infos):
        raise KlingError("malformed Kling answer: resource_pack_subscribe_infos is not a list of objects",
                         http_status=response.status_code)  # fmt: skip
    try:
        return [
            KlingResourcePack(
                str(i.get("resource_pack_name") or ""),
                str(i.get("resource_pack_id") or ""),
                str(i.get("resource_pack_type") or ""),
                _number(i.get("total_quantity")),
                _number(i.get("remaining_quantity")),
                _millis(i.get("purchase_time")),
                _millis(i.get("effective_time")),
                _millis(i.get("invalid_time")),
                str(i.get("status") or ""),
            )  # fmt: skip
            for i in infos
        ]
    except ValueError as exc:
        raise KlingError(f"malformed Kling answer: a pack's quantity is {exc}",
                         http_status=response.status_code) from None  # fmt: skip


class KlingClient:
    """Kling API calls. No retries here: callers decide with :attr:`KlingError.is_retryable`."""

    def __init__(self, base_url: str, credentials: KlingCredentials, *, timeout: float = 30) -> None:
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        # Connect (pool wait included) and each read are bounded, as httpx bounds them; no total, so a slow but
        # live answer is not cut off.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"KlingClient({self._base_url!r})"

    async def __aenter__(self) -> KlingClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        # aiohttp rather than httpx for this client: polling 10,000 open tasks, httpx's connection pool (a pass over
        # every pooled connection, with a readability poll of each idle socket, per request and per release) and
        # anyio's layers were 60% of a worker's CPU per poll (py-spy, bench/polling_scale.py).
        # trust_env=False (aiohttp's default): no proxy or netrc from the environment can redirect calls or add
        # credentials. Made on first use, inside the event loop that will use it.
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False, raise_for_status=False)
        return self._session

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: Mapping[str, int | str] | None = None
    ) -> KlingAnswer:
        headers = {
            "Authorization": f"Bearer {self._credentials.bearer(time.time())}",
            "Accept": "application/json",
        }
        content = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            async with self._http().request(method, self._base_url + path, data=content, params=params,
                                            headers=headers, allow_redirects=False) as answer:  # fmt: skip
                return KlingAnswer(answer.status, await answer.read())
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # No connection was made (or none came free in time): the request never left.
            raise KlingError(f"could not connect to Kling ({type(exc).__name__})", request_sent=False) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Timeouts, drops and protocol errors after connecting: the request may have been acted on.
            raise KlingError(f"no answer from Kling ({type(exc).__name__})", ambiguous=True) from exc

    async def create(self, body: dict[str, Any], path: str = ELEMENTS_PATH) -> KlingTask:
        """Submit one task to ``path`` (elements by default); put our own task id in ``body['external_task_id']`` to
        find it again."""
        response = await self._send("POST", path, body=body)
        return parse_task(unwrap(response), response)

    async def get(self, task_or_external_id: str, path: str = ELEMENTS_PATH) -> KlingTask | None:
        """One task of ``path`` by Kling's task_id or our external_task_id; None when Kling answers 1203."""
        if not task_or_external_id:
            raise ValueError("task_or_external_id must not be empty")
        response = await self._send("GET", f"{path}/{quote(task_or_external_id, safe='')}")
        try:
            data = unwrap(response)
        except KlingError as exc:
            if exc.is_not_found:
                return None
            raise
        return parse_task(data, response)

    async def list(self, page: int = 1, size: int = 30) -> builtins.list[KlingTask]:
        """One page of tasks (``pageNum`` counts from 1)."""
        if page < 1 or size < 1:
            raise ValueError("page and size must be at least 1")
        response = await self._send("GET", ELEMENTS_PATH, params={"pageNum": page, "pageSize": size})
        data = unwrap(response)
        if data is None:
            return []
        if not isinstance(data, builtins.list):
            raise _malformed("list data is not an array", response)
        return [parse_task(item, response) for item in data]

    async def delete_element(self, element_id: int) -> None:
        """Delete an element; an unknown or already deleted element counts as deleted.

        The id is sent as a decimal string so no JSON parser on the way can round it through a float.
        """
        response = await self._send("POST", DELETE_PATH, body={"element_id": str(element_id)})
        try:
            unwrap(response)
        except KlingError as exc:
            # Kling answers a repeated delete with HTTP 400, code 1201 "Element already be deleted for id: ..."
            # (seen live): after a delete whose answer was lost, that is the only proof the element is gone.
            gone = exc.code == 1201 and _ALREADY_DELETED.search(exc.message) is not None
            if not (exc.is_not_found or gone):
                raise

    async def resource_packs(self, start_ms: int, end_ms: int, name: str = "") -> builtins.list[KlingResourcePack]:
        """The account's resource packs (``GET /account/costs``) in the window [``start_ms``, ``end_ms``] (Unix
        milliseconds), only those named ``name`` when given. A read: safe to repeat."""
        params: dict[str, int | str] = {"start_time": start_ms, "end_time": end_ms}
        if name:
            params["resource_pack_name"] = name
        response = await self._send("GET", COSTS_PATH, params=params)
        return parse_resource_packs(unwrap(response), response)
