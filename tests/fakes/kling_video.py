"""The video half of the fake Kling server: Kling's /v1/videos/* task endpoints and the MP4 results they point at.

``VideoEndpoints`` is mixed into ``FakeKling`` (kling_server.py), which owns the HTTP server, auth, recording, the
element registry and the status schedule. This module knows what is particular to video: the request bodies Kling's
documented video APIs accept (refused with 1201 and a message otherwise), elements checked against the caller's own
account and the endpoint's allowed types, the per-account concurrency cap Kling enforces with 1303 (element and video
tasks alike), and real H.264 results made with PyAV, served by the fake itself at signed URLs that expire.

Not modelled: generation itself (results are synthetic clips at 4 fps, no sound track, the watermark variant is just
another encoding), Kling's media checks on image/video inputs (only loopback input videos are fetched, to take the
length of an edit or motion transfer), per-model feature matrices beyond durations (camera_control, masks, voice_list
and cfg_scale are accepted by name, not checked), billing (no final_unit_deduction), Range/HEAD on result URLs, and
the exact wording of Kling's 1201 messages.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import io
import secrets
import struct
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import unquote, urlencode, urlsplit

import av

from .mediagen import mp4

VideoKind = Literal["omni-video", "image2video", "text2video", "motion-control"]
VIDEO_KINDS: tuple[VideoKind, ...] = ("omni-video", "image2video", "text2video", "motion-control")
VIDEOS_PATH = "/v1/videos"
RESULTS_PATH = "/_fake/videos"
PROMPT_LIMIT = 2500
# Kling renames models; the provider's model names are configuration, so the fake accepts every documented name.
DEFAULT_VIDEO_MODELS: dict[str, frozenset[str]] = {
    "text2video": frozenset(
        {"kling-v1", "kling-v1-6", "kling-v2-master", "kling-v2-1-master", "kling-v2-5-turbo", "kling-v2-6"}
        | {"kling-v3"}
    ),
    "image2video": frozenset(
        {"kling-v1", "kling-v1-5", "kling-v1-6", "kling-v2-master", "kling-v2-1", "kling-v2-1-master"}
        | {"kling-v2-5-turbo", "kling-v2-6", "kling-v3"}
    ),
    "omni-video": frozenset({"kling-video-o1", "kling-v3-omni"}),
    "motion-control": frozenset({"kling-v2-6", "kling-v3"}),
}
_DEFAULT_MODEL = {"text2video": "kling-v1", "image2video": "kling-v1", "omni-video": "kling-video-o1"}
_COMMON = frozenset({"model_name", "prompt", "mode", "watermark_info", "callback_url", "external_task_id"})
_SHOTS = frozenset({"multi_shot", "shot_type", "multi_prompt"})
_FIELDS: dict[str, frozenset[str]] = {
    "text2video": _COMMON
    | _SHOTS
    | {"negative_prompt", "sound", "cfg_scale", "camera_control", "aspect_ratio", "duration", "voice_list"}
    | {"element_list"},
    "image2video": _COMMON
    | _SHOTS
    | {"image", "image_tail", "negative_prompt", "sound", "cfg_scale", "static_mask", "dynamic_masks"}
    | {"camera_control", "duration", "voice_list", "element_list"},
    "omni-video": _COMMON | _SHOTS | {"image_list", "element_list", "video_list", "aspect_ratio", "duration", "sound"},
    "motion-control": _COMMON
    | {"image_url", "video_url", "keep_original_sound", "character_orientation"}
    | {"element_list"},
}
ELEMENT_TYPES = frozenset({"image_refer", "video_refer"})
_FRAME_TYPES = (None, "first_frame", "end_frame")
_SIZES = {"16:9": (320, 180), "9:16": (180, 320), "1:1": (240, 240)}
_FPS = 4
_CHUNK = 1 << 20
_Note = tuple[str, dict[str, Any]]


# -- request bodies --------------------------------------------------------------------------------------


def _string_problem(body: Mapping[str, Any], name: str, limit: int, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        return f"{name} is required" if required else None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return f"{name} must be a string of 1-{limit} characters"
    return None


def _enum_problem(body: Mapping[str, Any], name: str, values: Iterable[str], required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        return f"{name} is required" if required else None
    allowed = sorted(values)
    return None if value in allowed else f"{name} must be one of {', '.join(allowed)}"


def duration_range(kind: str, model: str) -> range:
    """The durations (whole seconds) Kling accepts for this endpoint and model."""
    if model == "kling-video-o1":
        return range(3, 11)
    if kind in ("text2video", "image2video") and not model.startswith("kling-v3"):
        return range(5, 11, 5)
    return range(3, 16)


def _duration_problem(body: Mapping[str, Any], allowed: range) -> str | None:
    value = body.get("duration")
    if value is None:
        return None
    # Kling's duration is a string enum ("5"); an integer is a mapping mistake the fake should surface.
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or int(value) not in allowed:
        return f"duration must be one of the strings {', '.join(str(s) for s in allowed)}"
    return None


def _shot_problem(index: int, shot: Any) -> str | None:
    if not isinstance(shot, dict) or not isinstance(shot.get("index"), int):
        return f"multi_prompt[{index}] must be an object with an integer index"
    if _string_problem(shot, "prompt", 512, True):
        return f"multi_prompt[{index}].prompt must be a string of 1-512 characters"
    seconds = shot.get("duration")
    if not isinstance(seconds, str) or not seconds.isdigit() or int(seconds) < 1:
        return f"multi_prompt[{index}].duration must be a string of whole seconds >= 1"
    return None


def _shots_problem(body: Mapping[str, Any]) -> str | None:
    multi = body.get("multi_shot")
    if multi is None or multi is False:
        return None if body.get("multi_prompt") is None else "multi_prompt needs multi_shot true"
    if multi is not True:
        return "multi_shot must be a boolean"
    problem = _enum_problem(body, "shot_type", ("customize", "intelligence"), required=True)
    if problem or body["shot_type"] == "intelligence":
        return problem
    shots = body.get("multi_prompt")
    if not isinstance(shots, list) or not 1 <= len(shots) <= 6:
        return "multi_prompt must hold 1-6 shots when shot_type is customize"
    problem = next((p for i, s in enumerate(shots) if (p := _shot_problem(i, s))), None)
    total = int(body.get("duration", "5"))
    if problem is None and sum(int(s["duration"]) for s in shots) != total:
        return f"the multi_prompt durations must add up to duration ({total})"
    return problem


def _prompt_problem(kind: str, body: Mapping[str, Any]) -> str | None:
    customised = body.get("multi_shot") is True and body.get("shot_type") == "customize"
    required = kind in ("text2video", "omni-video") and not customised
    return _string_problem(body, "prompt", PROMPT_LIMIT, required)


def _common_problem(kind: str, body: Mapping[str, Any]) -> str | None:
    for name in ("callback_url", "external_task_id", "image", "image_tail", "image_url", "video_url", "static_mask"):
        if body.get(name) is not None and (not isinstance(body[name], str) or not body[name]):
            return f"{name} must be a non-empty string"
    watermark = body.get("watermark_info")
    if watermark is not None and not (isinstance(watermark, dict) and isinstance(watermark.get("enabled"), bool)):
        return 'watermark_info must be {"enabled": <boolean>}'
    cfg = body.get("cfg_scale")
    if cfg is not None and (isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 1):
        return "cfg_scale must be a number in [0, 1]"
    return (
        _prompt_problem(kind, body)
        or _string_problem(body, "negative_prompt", PROMPT_LIMIT, False)
        or _enum_problem(body, "mode", ("std", "pro"), required=kind == "motion-control")
        or _enum_problem(body, "sound", ("on", "off"))
        or _enum_problem(body, "aspect_ratio", _SIZES)
        or _shots_problem(body)
    )


def _items_problem(items: Any, name: str, check: Callable[[Any], bool], shape: str) -> str | None:
    if items is None:
        return None
    if not isinstance(items, list):
        return f"{name} must be a list"
    bad = next((i for i, item in enumerate(items) if not (isinstance(item, dict) and check(item))), None)
    return None if bad is None else f"{name}[{bad}] must be {shape}"


def _image_item(item: dict[str, Any]) -> bool:
    frame = item.get("type")
    return isinstance(item.get("image_url"), str) and bool(item["image_url"]) and frame in _FRAME_TYPES


def _video_item(item: dict[str, Any]) -> bool:
    return (
        isinstance(item.get("video_url"), str)
        and bool(item["video_url"])
        and item.get("refer_type") in ("feature", "base")
        and item.get("keep_original_sound") in (None, "yes", "no")
    )


def _omni_problem(body: Mapping[str, Any], model: str) -> str | None:
    images, videos = body.get("image_list") or [], body.get("video_list") or []
    problem = _items_problem(
        body.get("image_list"), "image_list", _image_item, '{"image_url", "type"?: first_frame|end_frame}'
    ) or _items_problem(
        body.get("video_list"),
        "video_list",
        _video_item,
        '{"video_url", "refer_type": feature|base, "keep_original_sound"?: yes|no}',
    )
    if problem:
        return problem
    frames = [image.get("type") for image in images]
    base = any(video["refer_type"] == "base" for video in videos)
    elements = body.get("element_list")
    count = len(images) + (len(elements) if isinstance(elements, list) else 0)
    limit = 4 if videos else 7
    rules = (
        (len(videos) > 1, "video_list holds at most 1 video"),
        (frames.count("first_frame") > 1 or frames.count("end_frame") > 1, "at most one first_frame and one end_frame"),
        ("end_frame" in frames and "first_frame" not in frames, "an end_frame needs a first_frame"),
        ("end_frame" in frames and len(images) > 2, "an end_frame is not supported with more than 2 images"),
        (base and ("first_frame" in frames or "end_frame" in frames), "frames are not supported with a base video"),
        (count > limit, f"images + elements must be at most {limit}" + (" with a reference video" if videos else "")),
        (base and body.get("duration") is not None, "duration cannot be set with a base video: it follows the video"),
        (
            not base and "first_frame" not in frames and body.get("aspect_ratio") is None,
            "aspect_ratio is required without a first_frame or a base video",
        ),
    )
    problem = next((message for broken, message in rules if broken), None)
    return problem or _duration_problem(body, duration_range("omni-video", model))


def _image2video_problem(body: Mapping[str, Any], model: str) -> str | None:
    if body.get("image") is None:
        return "image is required"
    controls = [name for name in ("static_mask", "dynamic_masks", "camera_control") if body.get(name) is not None]
    if body.get("image_tail") is not None and controls:
        return f"image_tail cannot be combined with {controls[0]}"
    return _duration_problem(body, duration_range("image2video", model))


def _text2video_problem(body: Mapping[str, Any], model: str) -> str | None:
    return _duration_problem(body, duration_range("text2video", model))


def _motion_problem(body: Mapping[str, Any], model: str) -> str | None:
    has_element = bool(body.get("element_list"))
    if body.get("image_url") is None and not has_element:
        return "image_url is required"
    if body.get("video_url") is None:
        return "video_url is required"
    problem = _enum_problem(body, "character_orientation", ("image", "video"), required=True) or _enum_problem(
        body, "keep_original_sound", ("yes", "no")
    )
    if problem is None and has_element and body["character_orientation"] != "video":
        return "character_orientation must be video with an element_list"
    return problem


_KIND_PROBLEM: dict[str, Callable[[Mapping[str, Any], str], str | None]] = {
    "omni-video": _omni_problem,
    "image2video": _image2video_problem,
    "text2video": _text2video_problem,
    "motion-control": _motion_problem,
}


def element_rule(kind: str, body: Mapping[str, Any]) -> tuple[int, frozenset[str]]:
    """(most elements, element types allowed) for a create on ``kind`` with this body."""
    if kind == "motion-control":
        return 1, frozenset({"video_refer"})
    if kind != "omni-video":
        return 3, ELEMENT_TYPES
    images = body.get("image_list") or []
    if body.get("video_list"):
        return 4, frozenset({"image_refer"})  # a reference video leaves no room for a video character
    first_frame = any(isinstance(i, dict) and i.get("type") == "first_frame" for i in images)
    return (3 if first_frame else 7), ELEMENT_TYPES


def _elements_problem(kind: str, body: Mapping[str, Any], element_type: Callable[[int], str | None]) -> str | None:
    items = body.get("element_list")
    if items is None:
        return None
    if not isinstance(items, list) or not items:
        return 'element_list must be a non-empty list of {"element_id": <integer>}'
    most, allowed = element_rule(kind, body)
    if len(items) > most:
        return f"element_list holds at most {most} elements here"
    seen: set[int] = set()
    for index, item in enumerate(items):
        element_id = item.get("element_id") if isinstance(item, dict) else None
        # Kling's element ids are 64-bit integers: a string or a float (which may have lost digits) is refused.
        if not isinstance(element_id, int) or isinstance(element_id, bool):
            return f"element_list[{index}].element_id must be an integer"
        reference_type = element_type(element_id)
        if reference_type is None:
            return f"element {element_id} does not exist"
        if reference_type not in allowed:
            return f"element {element_id} is {reference_type}; {kind} accepts {', '.join(sorted(allowed))} here"
        if element_id in seen:
            return f"element {element_id} is listed twice"
        seen.add(element_id)
    return None


def video_create_problem(
    kind: str, body: Any, models: Iterable[str], element_type: Callable[[int], str | None]
) -> str | None:
    """Why Kling would refuse this video create with 1201, or None. ``element_type`` looks an element up in the
    caller's own account (None: no such live element there)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    unknown = sorted(set(body) - _FIELDS[kind])
    if unknown:
        return f"unknown parameter {unknown[0]} for {kind}"
    model = body.get("model_name", _DEFAULT_MODEL.get(kind, "kling-v3"))
    if model not in models:
        return f"model_name must be one of {', '.join(sorted(models))}"
    return (
        _common_problem(kind, body) or _KIND_PROBLEM[kind](body, model) or _elements_problem(kind, body, element_type)
    )


# -- results ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def clip(seconds: int, aspect_ratio: str = "16:9", watermark: bool = False) -> bytes:
    """A real H.264 MP4 of ``seconds`` at 4 fps, made once per (length, shape, variant) and kept."""
    width, height = _SIZES.get(aspect_ratio, _SIZES["16:9"])
    # The watermark variant only has to be a different file of the same length.
    return mp4(width, height, seconds=seconds, fps=_FPS, crf=30 if watermark else 40)


def probe_seconds(url: str, *, limit: int = 64 << 20, timeout: float = 5.0) -> float | None:
    """The length of a video at a loopback http URL (the tests' media server); None for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
        return None
    conn = http.client.HTTPConnection("127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        response = conn.getresponse()
        data = response.read(limit + 1) if response.status == 200 else b""
    except OSError:
        return None
    finally:
        conn.close()
    if not data or len(data) > limit:
        return None
    try:
        with av.open(io.BytesIO(data)) as container:
            return container.duration / av.time_base if container.duration else None
    except (av.error.FFmpegError, ValueError):
        return None


def result_seconds(kind: str, body: Mapping[str, Any], default: int = 5) -> int:
    """How long the result is: the requested duration, or the input video's for an edit and for motion control."""
    videos = body.get("video_list") or []
    if kind == "omni-video" and any(v.get("refer_type") == "base" for v in videos):
        probed = probe_seconds(videos[0]["video_url"])
        return max(1, round(probed)) if probed else default
    if kind == "motion-control":
        probed = probe_seconds(body["video_url"])
        most = 10 if body.get("character_orientation") == "image" else 30
        return min(most, max(1, round(probed))) if probed else default
    return int(body.get("duration") or default)


@dataclass(frozen=True)
class ResultPlan:
    """How a task's result URLs behave: ``missing`` answers 404 and ``cut`` hangs up halfway through the body (both
    for the first ``fetches`` downloads, None: always), ``trickle`` sends ``bytes_per_second``, ``huge`` pads the MP4
    to ``megabytes`` generated on the fly."""

    mode: Literal["ok", "missing", "cut", "trickle", "huge"] = "ok"
    fetches: int | None = None
    bytes_per_second: int = 4096
    megabytes: float = 0.0


@dataclass
class _Published:
    seconds: int
    aspect_ratio: str
    plan: ResultPlan
    expires_ms: int
    fetches: int = 0


@dataclass
class FakeVideoTask:
    """A stored video task. ``step`` 0 = submitted, 1 = processing, 2 = ``final_status``; ``hold_step`` 1 stalls it."""

    kind: str
    account: str
    task_id: str
    external_task_id: str | None
    body: dict[str, Any]
    seconds: int
    created_ms: int
    updated_ms: int
    created_mono: float
    plan: ResultPlan = ResultPlan()
    final_status: str = "succeed"
    fail_message: str = ""
    hold_step: int = 2
    step: int = 0
    polls: int = 0
    videos: list[dict[str, str]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return ("submitted", "processing", self.final_status)[self.step]

    @property
    def watermark(self) -> bool:
        info = self.body.get("watermark_info")
        return isinstance(info, dict) and info.get("enabled") is True

    def data(self) -> dict[str, Any]:
        succeeded = self.status == "succeed"
        return {
            "task_id": self.task_id,
            "task_status": self.status,
            "task_status_msg": self.fail_message if self.status == "failed" else "",
            "task_info": {"external_task_id": self.external_task_id} if self.external_task_id else {},
            "task_result": {"videos": [dict(v) for v in self.videos]} if succeeded else {},
            "watermark_info": {"enabled": self.watermark},
            "created_at": self.created_ms,
            "updated_at": self.updated_ms,
        }


@dataclass
class _VideoScript:
    """Scripted outcomes for the next video tasks, consumed in order."""

    failures: deque[str] = field(default_factory=deque)
    stalls: int = 0
    drops: int = 0
    plans: deque[ResultPlan] = field(default_factory=deque)


def video_route(method: str, path: str) -> tuple[str | None, bool, str]:
    """(route or None for a wrong method; whether the path is a video one; "<kind>[/<id>]" or the result path)."""
    if path.startswith(RESULTS_PATH + "/"):
        return ("video_download" if method == "GET" else None), True, path
    if not path.startswith(VIDEOS_PATH + "/"):
        return None, False, ""
    kind, _, rest = path[len(VIDEOS_PATH) + 1 :].partition("/")
    if kind not in VIDEO_KINDS or "/" in rest:
        return None, False, ""
    if rest:
        return ("video_get" if method == "GET" else None), True, f"{kind}/{unquote(rest)}"
    return {"POST": "video_create", "GET": "video_list"}.get(method), True, kind


class VideoEndpoints:
    """Mixed into FakeKling, whose lock, element tasks, status schedule and callback outbox it shares (Kling counts
    concurrency over an account's element and video tasks together). Every public method is thread-safe."""

    _lock: threading.RLock
    _tasks: list[Any]
    _deleted: set[int]
    _stopping: threading.Event

    def _init_videos(
        self, *, concurrency: int | None, result_ttl: float, video_models: Mapping[str, Iterable[str]] | None
    ) -> None:
        self._caps: dict[str | None, int | None] = {None: concurrency}
        self._result_ttl = result_ttl
        self._video_models = {k: frozenset((video_models or {}).get(k, v)) for k, v in DEFAULT_VIDEO_MODELS.items()}
        self._signing_key = secrets.token_bytes(32)

    def _reset_videos(self) -> None:
        self._video_tasks: list[FakeVideoTask] = []
        self._video_script = _VideoScript()
        self._video_creates: dict[str | None, int] = defaultdict(int)
        self._published: dict[str, _Published] = {}
        self._max_in_flight: dict[str, int] = defaultdict(int)
        self._cap_refusals: dict[str, int] = defaultdict(int)

    # -- host hooks (FakeKling) ------------------------------------------------------------------------

    def _ok_answer(self, data: Any) -> Any:
        raise NotImplementedError

    def _error_answer(self, code: int, message: str | None = None) -> Any:
        raise NotImplementedError

    def _scheduled_step(self, task: Any) -> int:
        raise NotImplementedError

    def _advance(self, task: Any) -> list[_Note]:
        raise NotImplementedError

    def _set_step(self, task: Any, step: int) -> list[_Note]:
        raise NotImplementedError

    def _enqueue(self, notes: list[_Note]) -> None:
        raise NotImplementedError

    # -- scripting -------------------------------------------------------------------------------------

    def set_concurrency(self, cap: int | None, *, access_key: str | None = None) -> None:
        """Kling's cap on tasks submitted/processing per account (None: unlimited); a create beyond it answers 1303.
        Without ``access_key`` it is every account's default."""
        with self._lock:
            self._caps[access_key] = cap

    def set_result_ttl(self, seconds: float) -> None:
        """How long result URLs published from now on stay valid (an expired one answers 403)."""
        with self._lock:
            self._result_ttl = seconds

    def fail_next_video(self, message: str = "Content security policy triggered", times: int = 1) -> None:
        """The next created video tasks end ``failed`` with ``message`` as task_status_msg."""
        with self._lock:
            self._video_script.failures.extend([message] * times)

    def stall_next_video(self, times: int = 1) -> None:
        """The next created video tasks reach ``processing`` and stay there (until ``set_video_status``)."""
        with self._lock:
            self._video_script.stalls += times

    def drop_next_video_create(self, times: int = 1) -> None:
        """The next accepted video creates are stored, then the connection is closed without an answer."""
        with self._lock:
            self._video_script.drops += times

    def missing_next_result(self, fetches: int | None = None, times: int = 1) -> None:
        """The next created video tasks' result URLs answer 404 (the first ``fetches`` downloads; None: always)."""
        self._plan(ResultPlan("missing", fetches=fetches), times)

    def cut_next_result(self, fetches: int | None = 1, times: int = 1) -> None:
        """The next created video tasks' result downloads (the first ``fetches``; None: all) announce the whole
        length, send half of it, then close the connection."""
        self._plan(ResultPlan("cut", fetches=fetches), times)

    def trickle_next_result(self, bytes_per_second: int = 4096, times: int = 1) -> None:
        """The next created video tasks' results are sent at ``bytes_per_second``."""
        self._plan(ResultPlan("trickle", bytes_per_second=max(1, bytes_per_second)), times)

    def huge_next_result(self, megabytes: float, times: int = 1) -> None:
        """The next created video tasks' results are ``megabytes`` long: the MP4 then a ``free`` box of zeros,
        generated while sending (still a valid MP4 of the requested length)."""
        self._plan(ResultPlan("huge", megabytes=megabytes), times)

    def _plan(self, plan: ResultPlan, times: int) -> None:
        with self._lock:
            self._video_script.plans.extend([plan] * times)

    def set_video_status(self, task_or_external_id: str, status: str, message: str = "") -> None:
        """Move a video task to ``status`` now, past any stall (the schedule never moves it back)."""
        steps = {"submitted": 0, "processing": 1, "succeed": 2, "failed": 2}
        with self._lock:
            task = next((t for t in self._video_tasks if task_or_external_id in (t.task_id, t.external_task_id)), None)
            if task is None or status not in steps:
                raise ValueError(f"no video task {task_or_external_id!r} or bad status {status!r}")
            if steps[status] == 2:
                task.final_status, task.fail_message = status, message
            task.hold_step = 2
            notes = self._video_step(task, steps[status]) if steps[status] > task.step else []
        self._enqueue(notes)

    # -- inspection ------------------------------------------------------------------------------------

    def video_tasks(self, kind: str | None = None) -> list[FakeVideoTask]:
        with self._lock:
            return [replace(t) for t in self._video_tasks if kind is None or t.kind == kind]

    def video_task(self, task_or_external_id: str) -> FakeVideoTask | None:
        with self._lock:
            found = (t for t in self._video_tasks if task_or_external_id in (t.task_id, t.external_task_id))
            task = next(found, None)
            return None if task is None else replace(task)

    def video_create_count(self, external_task_id: str | None = None) -> int:
        """Authenticated video create requests received carrying this external_task_id (None: all of them)."""
        with self._lock:
            if external_task_id is None:
                return sum(self._video_creates.values())
            return self._video_creates.get(external_task_id, 0)

    def in_flight(self, access_key: str) -> int:
        """The account's tasks (elements and videos) submitted or processing now."""
        with self._lock:
            self._enqueue(self._advance_account(access_key))
            tasks = [*self._tasks, *self._video_tasks]
            return sum(1 for t in tasks if getattr(t, "account", None) == access_key and t.step < 2)

    def max_in_flight(self, access_key: str | None = None) -> int:
        """The most tasks one account (or any account) had in flight, counted at each accepted create."""
        with self._lock:
            if access_key is not None:
                return self._max_in_flight.get(access_key, 0)
            return max(self._max_in_flight.values(), default=0)

    def cap_refusals(self, access_key: str | None = None) -> int:
        """Creates (element or video) the concurrency cap refused with 1303, for one account or all of them. With
        the fake capped at the channel's cap, zero proves the gateway itself never went over it."""
        with self._lock:
            if access_key is not None:
                return self._cap_refusals.get(access_key, 0)
            return sum(self._cap_refusals.values())

    def video_state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "creates": {k or "": v for k, v in self._video_creates.items()},
                "tasks": [{"kind": t.kind, "account": t.account, **t.data()} for t in self._video_tasks],
                "max_in_flight": dict(self._max_in_flight),
                "cap_refusals": dict(self._cap_refusals),
            }

    # -- concurrency (shared with element creates) ---------------------------------------------------

    def _has_room(self, account: str) -> bool:
        cap = self._caps.get(account, self._caps[None])
        room = cap is None or self.in_flight(account) < cap
        self._cap_refusals[account] += int(not room)
        return room

    def _observe_in_flight(self, account: str) -> None:
        self._max_in_flight[account] = max(self._max_in_flight[account], self.in_flight(account))

    def _advance_account(self, account: str) -> list[_Note]:
        """Let time-based schedules move the account's tasks before counting them."""
        notes = [n for t in self._tasks if getattr(t, "account", None) == account for n in self._advance(t)]
        return notes + [n for t in self._video_tasks if t.account == account for n in self._advance_video(t)]

    # -- request handling ------------------------------------------------------------------------------

    def _count_video_create(self, body: Any) -> None:
        external = body.get("external_task_id") if isinstance(body, dict) else None
        self._video_creates[external if isinstance(external, str) else None] += 1

    def _video_answer(self, route: str, arg: str, body: Any, query: Mapping[str, list[str]], account: str) -> Any:
        kind, _, task_ref = arg.partition("/")
        if route == "video_create":
            return self._video_create(kind, body, account)
        if route == "video_get":
            return self._video_get(kind, task_ref, account)
        return self._video_list(kind, query, account)

    def _element_type(self, account: str, element_id: int) -> str | None:
        if element_id in self._deleted:
            return None
        owned = (
            t for t in self._tasks if t.account == account and t.status == "succeed" and t.element_id == element_id
        )
        task = next(owned, None)
        return None if task is None else str(task.body.get("reference_type"))

    def _video_create(self, kind: str, body: Any, account: str) -> Any:
        with self._lock:
            models = self._video_models[kind]
            problem = video_create_problem(kind, body, models, lambda eid: self._element_type(account, eid))
        if problem:
            return self._error_answer(1201, problem)
        seconds = result_seconds(kind, body)  # may fetch the input video: outside the lock
        with self._lock:
            external = body.get("external_task_id")
            if external and any(t.account == account and t.external_task_id == external for t in self._video_tasks):
                return self._error_answer(1201, "external_task_id already exists")
            if not self._has_room(account):
                return self._error_answer(1303)
            task = self._new_video_task(kind, body, account, seconds)
            self._observe_in_flight(account)
            drop = self._video_script.drops > 0
            self._video_script.drops -= int(drop)
            data = task.data()
        return None if drop else self._ok_answer(data)

    def _new_video_task(self, kind: str, body: dict[str, Any], account: str, seconds: int) -> FakeVideoTask:
        script, now = self._video_script, time.time()
        failure = script.failures.popleft() if script.failures else None
        stall = script.stalls > 0
        script.stalls -= int(stall)
        task = FakeVideoTask(
            kind=kind,
            account=account,
            task_id=str(uuid.uuid4().int >> 64),  # Kling's video task ids are long decimal strings
            external_task_id=body.get("external_task_id"),
            body=body,
            seconds=seconds,
            created_ms=int(now * 1000),
            updated_ms=int(now * 1000),
            created_mono=time.monotonic(),
            plan=script.plans.popleft() if script.plans else ResultPlan(),
            final_status="succeed" if failure is None else "failed",
            fail_message=failure or "",
            hold_step=1 if stall else 2,
        )
        self._video_tasks.append(task)
        return task

    def _video_get(self, kind: str, task_ref: str, account: str) -> Any:
        with self._lock:
            mine = (t for t in self._video_tasks if t.account == account and t.kind == kind)
            task = next((t for t in mine if task_ref in (t.task_id, t.external_task_id)), None)
            if task is None:
                return self._error_answer(1203, "task not found")
            task.polls += 1
            notes = self._advance_video(task)
            data = task.data()
        self._enqueue(notes)
        return self._ok_answer(data)

    def _video_list(self, kind: str, query: Mapping[str, list[str]], account: str) -> Any:
        raw_page, raw_size = query.get("pageNum", ["1"])[0], query.get("pageSize", ["30"])[0]
        if not (raw_page.isdigit() and raw_size.isdigit() and 1 <= int(raw_page) <= 1000 and 1 <= int(raw_size) <= 500):
            return self._error_answer(1201, "pageNum must be 1-1000 and pageSize 1-500")
        page, size = int(raw_page), int(raw_size)
        with self._lock:
            mine = [t for t in self._video_tasks if t.account == account and t.kind == kind]
            notes = [n for t in mine for n in self._advance_video(t)]
            data = [t.data() for t in reversed(mine)][(page - 1) * size : page * size]
        self._enqueue(notes)
        return self._ok_answer(data)

    # -- status walk -----------------------------------------------------------------------------------

    def _advance_video(self, task: FakeVideoTask) -> list[_Note]:
        step = min(self._scheduled_step(task), task.hold_step)
        return self._video_step(task, step) if step > task.step else []

    def _advance_videos(self) -> list[_Note]:
        with self._lock:
            return [n for t in self._video_tasks for n in self._advance_video(t)]

    def _video_step(self, task: FakeVideoTask, step: int) -> list[_Note]:
        if step == 2 and task.final_status == "succeed" and not task.videos:
            self._publish(task)
        return self._set_step(task, step)

    def _publish(self, task: FakeVideoTask) -> None:
        video_id = str(uuid.uuid4())
        expires_ms = int((time.time() + self._result_ttl) * 1000)
        aspect = task.body.get("aspect_ratio") or "16:9"
        self._published[video_id] = _Published(task.seconds, aspect, task.plan, expires_ms)
        video = {"id": video_id, "url": self._signed_url(video_id, "video", expires_ms)}
        if task.watermark:
            video["watermark_url"] = self._signed_url(video_id, "watermark", expires_ms)
        video["duration"] = str(task.seconds)
        task.videos = [video]

    # -- result URLs -----------------------------------------------------------------------------------

    def _signature(self, path: str, expires_ms: int) -> str:
        return hmac.new(self._signing_key, f"{path}\n{expires_ms}".encode(), hashlib.sha256).hexdigest()

    def _signed_url(self, video_id: str, variant: str, expires_ms: int) -> str:
        path = f"{RESULTS_PATH}/{video_id}/{variant}.mp4"
        query = urlencode({"expires": expires_ms, "signature": self._signature(path, expires_ms)})
        return f"{self.base_url}{path}?{query}"

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    def _download_plan(self, path: str, query: Mapping[str, list[str]]) -> tuple[int, str] | _Download:
        """What a result download gets: (status, reason) for a refusal, else what to send."""
        video_id, _, variant = path[len(RESULTS_PATH) + 1 :].partition("/")
        expires, signature = query.get("expires", [""])[0], query.get("signature", [""])[0]
        with self._lock:
            published = self._published.get(video_id)
            if published is None or variant not in ("video.mp4", "watermark.mp4"):
                return 404, "NoSuchKey"
            if not expires.isdigit() or not hmac.compare_digest(signature, self._signature(path, int(expires))):
                return 403, "SignatureDoesNotMatch"
            if time.time() * 1000 > int(expires):
                return 403, "Request has expired"
            published.fetches += 1
            plan, fetch = published.plan, published.fetches
        failing = plan.fetches is None or fetch <= plan.fetches
        if plan.mode == "missing" and failing:
            return 404, "NoSuchKey"
        payload = clip(published.seconds, published.aspect_ratio, variant == "watermark.mp4")
        return _Download(payload, plan if failing or plan.mode != "cut" else ResultPlan())

    def _serve_download(self, handler: Any, path: str, query: Mapping[str, list[str]]) -> None:
        plan = self._download_plan(path, query)
        if isinstance(plan, tuple):
            body = plan[1].encode()
            handler.send_response(plan[0])
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp4")
        handler.send_header("Content-Length", str(plan.length))
        handler.end_headers()
        for chunk in plan.chunks(self._stopping):
            handler.wfile.write(chunk)
        if plan.cut:
            handler.drop()


@dataclass
class _Download:
    """One result body, sent in chunks: as is, slowly (trickle) or padded to a size (huge)."""

    payload: bytes
    plan: ResultPlan
    cut: bool = False

    @property
    def length(self) -> int:
        if self.plan.mode != "huge":
            return len(self.payload)
        return max(len(self.payload) + 8, int(self.plan.megabytes * (1 << 20)))

    def chunks(self, stopping: threading.Event) -> Iterator[bytes]:
        if self.plan.mode == "trickle":
            yield from self._trickle(stopping)
        elif self.plan.mode == "cut":
            self.cut = True
            yield self.payload[: len(self.payload) // 2]
        elif self.plan.mode == "huge":
            yield self.payload
            padding = self.length - len(self.payload) - 8
            yield struct.pack(">I4s", padding + 8, b"free")  # a top-level free box: players skip it
            zeros = bytes(min(_CHUNK, padding))
            while padding > 0:
                yield zeros if padding >= len(zeros) else zeros[:padding]
                padding -= len(zeros)
        else:
            yield self.payload

    def _trickle(self, stopping: threading.Event) -> Iterator[bytes]:
        step = max(1, self.plan.bytes_per_second // 10)
        for start in range(0, len(self.payload), step):
            if start and stopping.wait(0.1):
                self.cut = True  # the server is stopping: hang up rather than finish
                return
            yield self.payload[start : start + step]
