"""A fake Kling server on 127.0.0.1 (advanced custom elements, video tasks through kling_video.py, and the account's
resource packs), written from the vendor contract, scriptable by tests."""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import hmac
import http.client
import json
import secrets
import signal
import socket
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast
from urllib.parse import parse_qs, unquote, urlsplit

from .kling_video import VideoEndpoints, video_route

Route = Literal["create", "get", "list", "delete", "video_create", "video_get", "video_list", "video_download", "costs"]
ROUTES: tuple[Route, ...] = (
    *("create", "get", "list", "delete"),
    *("video_create", "video_get", "video_list", "video_download"),
    "costs",
)
ELEMENTS_PATH = "/v1/general/advanced-custom-elements"
DELETE_PATH = "/v1/general/delete-elements"
COSTS_PATH = "/account/costs"
CONTROL_PATH = "/_fake/control"

HTTP_STATUS: dict[int, int] = {
    **dict.fromkeys(range(1000, 1005), 401),
    **dict.fromkeys((1100, 1101, 1102), 429),
    1103: 403,
    **dict.fromkeys((1200, 1201, 1300, 1301), 400),
    **dict.fromkeys((1202, 1203), 404),
    **dict.fromkeys((1302, 1303, 1304), 429),
    5000: 500,
    5001: 503,
    5002: 504,
}
MESSAGES: dict[int, str] = {
    1000: "Authentication failed",
    1001: "Authorization is empty",
    1002: "Authorization is invalid",
    1003: "Authorization is not yet valid",
    1004: "Authorization has expired",
    1100: "Account exception",
    1101: "Account in arrears",
    1102: "Resource pack exhausted or expired",
    1103: "No access to the requested resource",
    1200: "Invalid request parameters",
    1201: "Invalid parameters",
    1202: "The requested method is invalid",
    1203: "The requested resource does not exist",
    1300: "Platform policy triggered",
    1301: "Content security policy triggered",
    1302: "Request rate limit exceeded",
    1303: "Concurrency or resource limit exceeded",
    1304: "IP whitelist policy triggered",
    5000: "Server internal error",
    5001: "Server temporarily unavailable for maintenance",
    5002: "Server internal timeout due to backlog",
}
FIRST_ELEMENT_ID = 800_000_000_000_001  # below 2**53 unless a test queues bigger ids
TAG_IDS = frozenset(f"o_{n}" for n in range(101, 109))


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (also requests it refused)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    time: float
    route: Route | None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class CallbackRecord:
    """One callback POST the fake tried: the status it reported and what the receiver answered."""

    url: str
    task_status: str
    body: dict[str, Any]
    http_status: int | None
    error: str | None


@dataclass
class FakeTask:
    """A stored task. ``step`` 0 = submitted, 1 = processing, 2 = ``final_status``."""

    task_id: str
    external_task_id: str | None
    body: dict[str, Any]
    element_id: int
    created_ms: int
    updated_ms: int
    created_mono: float
    final_status: str = "succeed"
    fail_message: str = ""
    step: int = 0
    polls: int = 0
    account: str | None = None  # the access key (or API key) that created it: its element lives in that account

    @property
    def status(self) -> str:
        return ("submitted", "processing", self.final_status)[self.step]

    def data(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.status == "succeed":
            result = {"elements": [self._element()]}
        return {
            "task_id": self.task_id,
            "task_status": self.status,
            "task_status_msg": self.fail_message if self.status == "failed" else "",
            "task_info": {"external_task_id": self.external_task_id} if self.external_task_id else {},
            "task_result": result,
            "created_at": self.created_ms,
            "updated_at": self.updated_ms,
        }

    def _element(self) -> dict[str, Any]:
        keys = ("element_name", "element_description", "reference_type", "element_image_list")
        element = {k: self.body[k] for k in (*keys, "element_video_list") if k in self.body}
        element["element_id"] = self.element_id
        element["tag_list"] = self.body.get("tag_list") or []
        if self.body.get("element_voice_id"):
            element["element_voice_info"] = {"voice_id": self.body["element_voice_id"]}
        return element


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json"


def envelope(code: int, message: str, data: Any = None) -> bytes:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": secrets.token_hex(16)}
    if code == 0 or data is not None:
        body["data"] = data
    return json.dumps(body).encode()


def error_answer(code: int, message: str | None = None, http_status: int | None = None) -> _Answer:
    return _Answer(http_status or HTTP_STATUS.get(code, 400), envelope(code, message or MESSAGES.get(code, "")))


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def jwt_problem(token: str, secrets_by_key: Mapping[str, str], now: float, leeway: float) -> int | None:
    """The Kling auth code a JWT earns (None when valid). Verified by hand: short test keys must not warn."""
    parts = token.split(".")
    if len(parts) != 3:
        return 1002
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (ValueError, binascii.Error):
        return 1002
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return 1002
    secret = secrets_by_key.get(str(claims.get("iss")))
    if secret is None:
        return 1000
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        return 1000
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
        return 1002
    if now > exp + leeway:
        return 1004
    return 1003 if now < nbf - leeway else None


def _text_problem(body: Mapping[str, Any], name: str, limit: int, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        return f"{name} is required" if required else None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return f"{name} must be a string of 1-{limit} characters"
    return None


def _images_problem(images: Any) -> str | None:
    if not isinstance(images, dict):
        return "element_image_list is required for reference_type image_refer"
    if not isinstance(images.get("frontal_image"), str) or not images["frontal_image"]:
        return "element_image_list.frontal_image is required"
    refs = images.get("refer_images")
    if not isinstance(refs, list) or not 1 <= len(refs) <= 3:
        return "element_image_list.refer_images must hold 1-3 items"
    if not all(isinstance(r, dict) and isinstance(r.get("image_url"), str) and r["image_url"] for r in refs):
        return "element_image_list.refer_images[].image_url is required"
    return None


def _videos_problem(videos: Any) -> str | None:
    refs = videos.get("refer_videos") if isinstance(videos, dict) else None
    if not isinstance(refs, list) or len(refs) != 1:
        return "element_video_list.refer_videos must hold exactly 1 item"
    if not isinstance(refs[0], dict) or not isinstance(refs[0].get("video_url"), str) or not refs[0]["video_url"]:
        return "element_video_list.refer_videos[].video_url is required"
    return None


def _reference_problem(body: Mapping[str, Any]) -> str | None:
    kind = body.get("reference_type")
    if kind == "image_refer":
        if body.get("element_video_list") is not None:
            return "element_video_list is not allowed with reference_type image_refer"
        return _images_problem(body.get("element_image_list"))
    if kind == "video_refer":
        if body.get("element_image_list") is not None:
            return "element_image_list is not allowed with reference_type video_refer"
        return _videos_problem(body.get("element_video_list"))
    return "reference_type must be image_refer or video_refer"


def _optional_problem(body: Mapping[str, Any]) -> str | None:
    for name in ("element_voice_id", "callback_url", "external_task_id"):
        if body.get(name) is not None and (not isinstance(body[name], str) or not body[name]):
            return f"{name} must be a non-empty string"
    tags = body.get("tag_list")
    if tags is None:
        return None
    ids = [t.get("tag_id") if isinstance(t, dict) else None for t in tags] if isinstance(tags, list) else None
    if ids is None or not all(i in TAG_IDS for i in ids) or len(set(ids)) != len(ids):
        return "tag_list must be distinct {tag_id} items from o_101..o_108"
    return None


def create_problem(body: Any) -> str | None:
    """Why Kling would refuse this create body with 1201, or None."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    return (
        _text_problem(body, "element_name", 20, True)
        or _text_problem(body, "element_description", 100, True)
        or _reference_problem(body)
        or _optional_problem(body)
    )


def _route(method: str, path: str) -> tuple[Route | None, bool, str]:
    """(route, or None for a wrong method; whether the path is one of Kling's; the id in a get path)."""
    if path == ELEMENTS_PATH:
        return _ELEMENT_METHODS.get(method), True, ""
    prefix = ELEMENTS_PATH + "/"
    if path.startswith(prefix) and len(path) > len(prefix) and "/" not in path[len(prefix) :]:
        return ("get" if method == "GET" else None), True, unquote(path[len(prefix) :])
    if path == DELETE_PATH:
        return ("delete" if method == "POST" else None), True, ""
    if path == COSTS_PATH:
        return ("costs" if method == "GET" else None), True, ""
    return None, False, ""


_ELEMENT_METHODS: dict[str, Route] = {"POST": "create", "GET": "list"}


@dataclass
class _Script:
    """What tests asked for: queued answers, stalls, drops, failures and element ids, consumed in order."""

    answers: dict[str, deque[_Answer]] = field(default_factory=lambda: defaultdict(deque))
    stalls: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    drops: int = 0
    lost_deletes: deque[int | None] = field(default_factory=deque)
    failures: deque[str] = field(default_factory=deque)
    element_ids: deque[int] = field(default_factory=deque)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, fake: FakeKling) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.open_lock:
            self.open.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.open_lock:
                self.open.discard(request)

    def close_open(self) -> None:
        with self.open_lock:
            for sock in self.open:
                _shutdown(sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # clients hanging up are normal here
            super().handle_error(request, client_address)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would add ~40 ms per answer

    def do_GET(self) -> None:
        cast(_Server, self.server).fake.serve(self)

    do_POST = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def drop(self) -> None:
        self.close_connection = True
        _shutdown(self.connection)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _query_int(query: Mapping[str, list[str]], name: str, default: int, low: int, high: int) -> int | None:
    raw = query.get(name, [str(default)])[0]
    value = _int_or_none(raw)
    return value if value is not None and low <= value <= high else None


_CONTROL_ACTIONS = frozenset(
    {"queue_error", "queue_raw", "stall", "drop_next_create", "lose_next_delete", "fail_next_task", "queue_element_ids"}
    | {"set_status", "set_schedule", "reset", "state"}
    | {"set_concurrency", "set_result_ttl", "fail_next_video", "stall_next_video", "drop_next_video_create"}
    | {"missing_next_result", "cut_next_result", "trickle_next_result", "huge_next_result", "set_video_status"}
    | {"video_create_count", "max_in_flight", "in_flight", "cap_refusals", "set_resource_packs", "refuse_costs"}
)
_STEPS = {"submitted": 0, "processing": 1, "succeed": 2, "failed": 2}
_Note = tuple[str, dict[str, Any]]


class FakeKling(VideoEndpoints):
    """The fake server. Every public method is thread-safe; ``start()`` returns the base URL. The video endpoints'
    options and methods come from VideoEndpoints (kling_video.py): ``concurrency`` is each account's cap on tasks
    submitted/processing (None: unlimited), ``result_ttl`` the life of result URLs, ``video_models`` the model_name
    values accepted per video endpoint (defaults: every documented name)."""

    def __init__(
        self,
        *,
        access_keys: Mapping[str, str] | None = None,
        api_keys: Iterable[str] = (),
        polls_per_step: int | None = 1,
        seconds_per_step: float | None = None,
        leeway: float = 5.0,
        callbacks: bool = False,
        port: int = 0,
        concurrency: int | None = None,
        result_ttl: float = 3600.0,
        video_models: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._keys = dict(access_keys or {})
        self._api_keys = frozenset(api_keys)
        if not self._keys and not self._api_keys:
            raise ValueError("give the fake at least one access key or API key")
        self.leeway = leeway
        self._polls_per_step = polls_per_step
        self._seconds_per_step = seconds_per_step
        self._callbacks = callbacks
        self._port = port
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._outbox: deque[_Note] = deque()
        self._outbox_ready = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._init_videos(concurrency=concurrency, result_ttl=result_ttl, video_models=video_models)
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> str:
        self._stopping.clear()
        self._server = _Server(self._port, self)
        self._threads = [
            threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-kling", daemon=True),
            threading.Thread(target=self._tick, name="fake-kling-tick", daemon=True),
            threading.Thread(target=self._deliver, name="fake-kling-callbacks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._outbox_ready.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_open()
            self._server.server_close()
        for thread in self._threads:
            thread.join(5)
        self._server = None

    def __enter__(self) -> FakeKling:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Kling server is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- scripting -------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget tasks, requests, counters and script (keys and schedule stay)."""
        with self._lock:
            self._tasks: list[FakeTask] = []
            self._script = _Script()
            self._requests: list[RecordedRequest] = []
            self._packs: dict[str, list[dict[str, Any]]] = {}
            self._costs_refused: dict[str, int] = {}
            self._creates: dict[str | None, int] = defaultdict(int)
            self._callbacks_sent: list[CallbackRecord] = []
            self._deleted: set[int] = set()
            self._next_element_id = FIRST_ELEMENT_ID
            self._reset_videos()

    def queue_error(
        self, route: Route, code: int, *, message: str | None = None, http_status: int | None = None, times: int = 1
    ) -> None:
        """The next ``times`` authenticated calls of ``route`` answer this Kling error (HTTP status from the table)."""
        self._queue(route, error_answer(code, message, http_status), times)

    def queue_raw(
        self, route: Route, http_status: int, body: str, *, content_type: str = "text/plain", times: int = 1
    ) -> None:
        """The next calls answer a non-envelope body, e.g. a proxy's HTML 502."""
        self._queue(route, _Answer(http_status, body.encode(), content_type), times)

    def stall(self, route: Route, seconds: float, *, times: int = 1) -> None:
        """The next calls of ``route`` wait ``seconds`` before being handled (a create still happens after)."""
        with self._lock:
            self._script.stalls[self._checked(route)].extend([seconds] * times)

    def drop_next_create(self, times: int = 1) -> None:
        """The next accepted creates are stored, then the connection is closed without an answer."""
        with self._lock:
            self._script.drops += times

    def lose_next_delete(self, http_status: int | None = None, times: int = 1) -> None:
        """The next deletes of a live element happen, then their answer is lost: the connection is closed
        (``http_status`` None) or Kling answers that HTTP status with an internal error (5000) all the same."""
        with self._lock:
            self._script.lost_deletes.extend([http_status] * times)

    def fail_next_task(self, message: str = "Content security policy triggered", times: int = 1) -> None:
        """The next created tasks end ``failed`` with ``message`` as task_status_msg."""
        with self._lock:
            self._script.failures.extend([message] * times)

    def set_resource_packs(self, account: str, packs: Sequence[Mapping[str, Any]]) -> None:
        """What ``/account/costs`` answers the account (an access key or API key): resource_pack_subscribe_infos
        items (resource_pack_name, resource_pack_id, resource_pack_type, total_quantity, remaining_quantity,
        purchase_time, effective_time, invalid_time, status)."""
        with self._lock:
            self._packs[account] = [dict(p) for p in packs]

    def refuse_costs(self, account: str, code: int = 1103) -> None:
        """``/account/costs`` answers this account Kling's error ``code`` (1103: no access to the resource)."""
        with self._lock:
            self._costs_refused[account] = code

    def queue_element_ids(self, *ids: int) -> None:
        """Element ids for the next created tasks, e.g. ``2**63 - 7``."""
        with self._lock:
            self._script.element_ids.extend(ids)

    def set_status(self, task_or_external_id: str, status: str, message: str = "") -> None:
        """Move a task to ``status`` now (the schedule never moves it back)."""
        with self._lock:
            task = self._find(task_or_external_id)
            if task is None or status not in _STEPS:
                raise ValueError(f"no task {task_or_external_id!r} or bad status {status!r}")
            if _STEPS[status] == 2:
                task.final_status, task.fail_message = status, message
            notes = self._set_step(task, _STEPS[status])
        self._enqueue(notes)

    def set_schedule(self, *, polls_per_step: int | None, seconds_per_step: float | None = None) -> None:
        """Advance one status step every N polls of the task and/or every S seconds; None disables either."""
        with self._lock:
            self._polls_per_step, self._seconds_per_step = polls_per_step, seconds_per_step

    # -- inspection ------------------------------------------------------------------------------------

    def requests(self, route: Route | None = None) -> list[RecordedRequest]:
        """Every request received (header names lower-cased), optionally only one route's."""
        with self._lock:
            return [r for r in self._requests if route is None or r.route == route]

    def create_count(self, external_task_id: str | None = None) -> int:
        """Authenticated create requests received carrying this external_task_id (None: all of them)."""
        with self._lock:
            if external_task_id is None:
                return sum(self._creates.values())
            return self._creates.get(external_task_id, 0)

    def task(self, task_or_external_id: str) -> FakeTask | None:
        with self._lock:
            task = self._find(task_or_external_id)
            return None if task is None else replace(task)

    def tasks(self) -> list[FakeTask]:
        with self._lock:
            return [replace(t) for t in self._tasks]

    def callbacks_sent(self) -> list[CallbackRecord]:
        with self._lock:
            return list(self._callbacks_sent)

    def state(self) -> dict[str, Any]:
        """A JSON-able snapshot, for the control endpoint used by subprocess tests."""
        with self._lock:
            return {
                "creates": {k or "": v for k, v in self._creates.items()},
                "requests": [{"method": r.method, "path": r.path, "route": r.route} for r in self._requests],
                "tasks": [t.data() for t in self._tasks],
                "callbacks": [
                    {"url": c.url, "status": c.task_status, "http": c.http_status} for c in self._callbacks_sent
                ],
                "videos": self.video_state(),
            }

    # -- request handling ------------------------------------------------------------------------------

    def serve(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        length = _int_or_none(handler.headers.get("Content-Length", "0")) or 0
        body = handler.rfile.read(length)
        if url.path == CONTROL_PATH:
            handler.answer(self._control(body))
            return
        route, known_path, arg = _route(handler.command, url.path)
        if not known_path:
            route, known_path, arg = cast(tuple[Route | None, bool, str], video_route(handler.command, url.path))
        query = parse_qs(url.query)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self._requests.append(RecordedRequest(handler.command, url.path, query, headers, body, time.time(), route))
        if route == "video_download":  # result URLs are signed, not authenticated
            if self._wait_stall(route):
                self._serve_download(handler, arg, query)
            else:
                handler.drop()
            return
        answer = self._answer(route, known_path, arg, body, query, headers) if self._wait_stall(route) else None
        if answer is None:
            handler.drop()
        else:
            handler.answer(answer)

    def _answer(
        self,
        route: Route | None,
        known: bool,
        arg: str,
        body: bytes,
        query: dict[str, list[str]],
        headers: dict[str, str],
    ) -> _Answer | None:
        if not known:
            return _Answer(404, b"404 page not found", "text/plain")
        problem = self._auth_problem(headers.get("authorization"))
        if problem is not None:
            return error_answer(problem)
        if route is None:
            return error_answer(1202)
        parsed = _json_or_none(body)
        account = self._account(headers["authorization"])
        with self._lock:
            self._count_create(route, parsed)
            queued = self._script.answers[route].popleft() if self._script.answers[route] else None
        if queued is not None:
            return queued
        if route in ("create", "delete", "video_create") and not isinstance(parsed, dict):
            return error_answer(1200, "the body must be a JSON object")
        if route.startswith("video_"):
            return cast(_Answer | None, self._video_answer(route, arg, parsed, query, account))
        if route == "create":
            return self._create(parsed, account)
        if route == "delete":
            return self._delete(parsed)
        if route == "costs":
            return self._costs(query, account)
        return self._get(arg) if route == "get" else self._list(query)

    def _count_create(self, route: Route, body: Any) -> None:
        if route == "create":
            external = body.get("external_task_id") if isinstance(body, dict) else None
            self._creates[external if isinstance(external, str) else None] += 1
        elif route == "video_create":
            self._count_video_create(body)

    def _auth_problem(self, header: str | None) -> int | None:
        if not header or not header.strip():
            return 1001
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return 1002
        if token in self._api_keys:
            return None
        return jwt_problem(token, self._keys, time.time(), self.leeway)

    def _account(self, header: str) -> str:
        """Whose request this is (its auth already checked): the JWT's issuer (the access key) or the API key."""
        token = header.strip().partition(" ")[2].strip()
        if token in self._api_keys:
            return token
        return str(json.loads(_b64decode(token.split(".")[1]))["iss"])

    def _ok_answer(self, data: Any) -> _Answer:
        return _Answer(200, envelope(0, "SUCCEED", data))

    def _error_answer(self, code: int, message: str | None = None) -> _Answer:
        return error_answer(code, message)

    def _create(self, body: dict[str, Any], account: str) -> _Answer | None:
        problem = create_problem(body)
        if problem:
            return error_answer(1201, problem)
        with self._lock:
            external = body.get("external_task_id")
            if external and self._find_external(external) is not None:
                return error_answer(1201, "external_task_id already exists")
            if not self._has_room(account):  # Kling's concurrency cap counts element and video tasks alike
                return error_answer(1303)
            task = self._new_task(body)
            task.account = account
            self._observe_in_flight(account)
            drop = self._script.drops > 0
            self._script.drops -= int(drop)
            data = task.data()
        return None if drop else _Answer(200, envelope(0, "SUCCEED", data))

    def _new_task(self, body: dict[str, Any]) -> FakeTask:
        script, now = self._script, time.time()
        if script.element_ids:
            element_id = script.element_ids.popleft()
        else:
            element_id, self._next_element_id = self._next_element_id, self._next_element_id + 1
        failure = script.failures.popleft() if script.failures else None
        task = FakeTask(
            task_id=secrets.token_urlsafe(16),
            external_task_id=body.get("external_task_id"),
            body=body,
            element_id=element_id,
            created_ms=int(now * 1000),
            updated_ms=int(now * 1000),
            created_mono=time.monotonic(),
            final_status="succeed" if failure is None else "failed",
            fail_message=failure or "",
        )
        self._tasks.append(task)
        return task

    def _get(self, task_or_external_id: str) -> _Answer:
        with self._lock:
            task = self._find(task_or_external_id)
            if task is None:
                return error_answer(1203, "task not found")
            task.polls += 1
            notes = self._advance(task)
            data = task.data()
        self._enqueue(notes)
        return _Answer(200, envelope(0, "SUCCEED", data))

    def _list(self, query: dict[str, list[str]]) -> _Answer:
        page = _query_int(query, "pageNum", 1, 1, 1000)
        size = _query_int(query, "pageSize", 30, 1, 500)
        if page is None or size is None:
            return error_answer(1201, "pageNum must be 1-1000 and pageSize 1-500")
        with self._lock:
            notes = [note for task in self._tasks for note in self._advance(task)]
            newest = list(reversed(self._tasks))[(page - 1) * size : page * size]
            data = [task.data() for task in newest]
        self._enqueue(notes)
        return _Answer(200, envelope(0, "SUCCEED", data))

    def _costs(self, query: dict[str, list[str]], account: str) -> _Answer:
        """The account's resource packs bought in [start_time, end_time] (ms, both required), by name if given."""
        start = _int_or_none(query.get("start_time", [""])[0])
        end = _int_or_none(query.get("end_time", [""])[0])
        if start is None or end is None or start > end:
            return error_answer(1201, "start_time and end_time must be millisecond timestamps, start before end")
        name = query.get("resource_pack_name", [""])[0]
        with self._lock:
            refused = self._costs_refused.get(account)
            if refused is not None:
                return error_answer(refused)
            packs = [p for p in self._packs.get(account, [])
                     if start <= int(p.get("purchase_time", start)) <= end
                     and (not name or p.get("resource_pack_name") == name)]  # fmt: skip
        data = {"code": 0, "msg": "", "resource_pack_subscribe_infos": packs}
        return _Answer(200, envelope(0, "SUCCEED", data))

    def _delete(self, body: dict[str, Any]) -> _Answer | None:
        element_id = _int_or_none(body.get("element_id"))
        if element_id is None:
            return error_answer(1201, "element_id must be an integer or a decimal string")
        with self._lock:
            known = any(t.status == "succeed" and t.element_id == element_id for t in self._tasks)
            if not known:
                return error_answer(1203, "element not found")
            if element_id in self._deleted:  # as Kling answers a repeated delete (seen live): 400 and 1201
                return error_answer(1201, f"Element already be deleted for id: {element_id}")
            self._deleted.add(element_id)
            lost = self._script.lost_deletes.popleft() if self._script.lost_deletes else 0
        if lost is None:
            return None
        return error_answer(5000, http_status=lost) if lost else _Answer(200, envelope(0, "SUCCEED", {}))

    # -- internals -------------------------------------------------------------------------------------

    def _checked(self, route: str) -> str:
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
        return route

    def _queue(self, route: Route, answer: _Answer, times: int) -> None:
        with self._lock:
            self._script.answers[self._checked(route)].extend([answer] * times)

    def _wait_stall(self, route: Route | None) -> bool:
        """Sleep a scripted stall; False when the server stops meanwhile (then the connection is dropped)."""
        with self._lock:
            stalls = self._script.stalls[route] if route else None
            seconds = stalls.popleft() if stalls else None
        return seconds is None or not self._stopping.wait(seconds)

    def _find(self, task_or_external_id: str) -> FakeTask | None:
        by_id = next((t for t in self._tasks if t.task_id == task_or_external_id), None)
        return by_id or self._find_external(task_or_external_id)

    def _find_external(self, external_task_id: str) -> FakeTask | None:
        return next((t for t in self._tasks if t.external_task_id == external_task_id), None)

    def _advance(self, task: FakeTask) -> list[_Note]:
        step = self._scheduled_step(task)
        return self._set_step(task, min(step, 2)) if step > task.step else []

    def _scheduled_step(self, task: Any) -> int:
        """The step the schedule has reached for a task (element or video), never below its current one."""
        step = int(task.step)
        if self._polls_per_step:
            step = max(step, task.polls // self._polls_per_step)
        if self._seconds_per_step is not None:
            elapsed = time.monotonic() - task.created_mono
            step = max(step, 2 if self._seconds_per_step <= 0 else int(elapsed / self._seconds_per_step))
        return step

    def _set_step(self, task: Any, step: int) -> list[_Note]:
        task.step, task.updated_ms = step, max(task.updated_ms, int(time.time() * 1000))
        url = task.body.get("callback_url")
        return [(url, task.data())] if self._callbacks and url else []

    def _enqueue(self, notes: list[_Note]) -> None:
        if notes:
            with self._lock:
                self._outbox.extend(notes)
                self._outbox_ready.notify_all()

    def _tick(self) -> None:
        while not self._stopping.wait(0.05):
            with self._lock:
                timed = self._seconds_per_step is not None
                notes = [n for t in self._tasks for n in self._advance(t)] + self._advance_videos() if timed else []
            self._enqueue(notes)

    def _deliver(self) -> None:
        """One thread posts callbacks in order, so a receiver sees statuses in the order they happened."""
        while True:
            with self._lock:
                while not self._outbox and not self._stopping.is_set():
                    self._outbox_ready.wait(0.5)
                if self._stopping.is_set():
                    return
                url, data = self._outbox.popleft()
            record = _post_callback(url, data)
            with self._lock:
                self._callbacks_sent.append(record)

    def _control(self, body: bytes) -> _Answer:
        try:
            command = json.loads(body)
            action = command.pop("action")
            if action not in _CONTROL_ACTIONS:
                raise ValueError(f"unknown action {action!r}")
            args = command.pop("ids", []) if action == "queue_element_ids" else []
            result = getattr(self, action)(*args, **command)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return _Answer(400, json.dumps({"ok": False, "error": str(exc)}).encode())
        return _Answer(200, json.dumps({"ok": True, "result": result}).encode())


def _post_callback(url: str, data: dict[str, Any]) -> CallbackRecord:
    """POST ``data`` to a loopback receiver; any other host is refused (tests must never leave 127.0.0.1)."""
    parts = urlsplit(url)
    status: int | None = None
    error: str | None = None
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
        error = "refused: the fake only calls back to http://127.0.0.1"
    else:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = http.client.HTTPConnection("127.0.0.1", parts.port or 80, timeout=5)
        try:
            conn.request("POST", target, body=json.dumps(data), headers={"Content-Type": "application/json"})
            status = conn.getresponse().status
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
    return CallbackRecord(url, str(data["task_status"]), data, status, error)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake until SIGTERM/SIGINT; the first stdout line is its base URL."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.kling_server", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--access-key", default="")
    parser.add_argument("--secret-key", default="")
    parser.add_argument("--api-key", action="append", default=[])
    parser.add_argument("--polls-per-step", type=int, default=1, help="0: polls never advance a task")
    parser.add_argument("--seconds-per-step", type=float, default=None)
    parser.add_argument("--leeway", type=float, default=5.0)
    parser.add_argument("--callbacks", action="store_true", help="POST status changes to loopback callback_urls")
    parser.add_argument("--concurrency", type=int, default=None, help="each account's cap on tasks in flight")
    args = parser.parse_args(argv)
    if bool(args.access_key) != bool(args.secret_key):
        parser.error("--access-key and --secret-key go together")
    fake = FakeKling(
        access_keys={args.access_key: args.secret_key} if args.access_key else None,
        api_keys=args.api_key,
        polls_per_step=args.polls_per_step or None,
        seconds_per_step=args.seconds_per_step,
        leeway=args.leeway,
        callbacks=args.callbacks,
        port=args.port,
        concurrency=args.concurrency,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(fake.start(), flush=True)
    while not done.wait(0.2):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
