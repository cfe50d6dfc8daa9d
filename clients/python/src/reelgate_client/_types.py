"""Typed results: frozen dataclasses parsed from the server's JSON, each keeping the original dict as ``raw``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Self, cast

TaskStatus = Literal["pending", "processing", "completed", "failed"]
TERMINAL_STATUSES: tuple[str, ...] = ("completed", "failed")


def _dict(value: object) -> dict[str, Any]:
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


@dataclass(frozen=True)
class Usage:
    """What the task costs: the reservation, and once settled the amount charged (0 when failed or cancelled)."""

    billing_rule: str
    credits_reserved: float
    user_group: str
    credits_charged: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        charged = data.get("credits_charged")
        return cls(
            billing_rule=str(data.get("billing_rule", "")),
            credits_reserved=_number(data.get("credits_reserved")),
            user_group=str(data.get("user_group", "")),
            credits_charged=None if charged is None else _number(charged),
        )


@dataclass(frozen=True)
class TaskError:
    """Why a task failed: one of the vendor's task error codes and a sentence."""

    code: str
    message: str


@dataclass(frozen=True)
class _ElementFields:
    """The element's own fields, shared by a task's ``result_data`` and the ``/v1/elements`` objects."""

    element_id: str
    element_name: str
    element_description: str
    reference_type: str
    tags: tuple[str, ...]
    frontal_image: str | None
    refer_images: tuple[str, ...]
    video_url: str | None
    voice_id: str | None

    @staticmethod
    def parse_fields(data: dict[str, Any]) -> dict[str, Any]:
        images = _dict(data.get("element_image_list"))
        videos = _dict(data.get("element_video_list"))
        refer_videos = [_dict(v) for v in videos.get("refer_videos") or []]
        return {
            # Always a string: a 64-bit id parsed as a float would silently lose digits.
            "element_id": str(data.get("element_id", "")),
            "element_name": str(data.get("element_name", "")),
            "element_description": str(data.get("element_description", "")),
            "reference_type": str(data.get("reference_type", "")),
            "tags": tuple(str(_dict(t).get("tag_id", "")) for t in data.get("tag_list") or []),
            "frontal_image": _opt_str(images.get("frontal_image")),
            "refer_images": tuple(str(_dict(r).get("image_url", "")) for r in images.get("refer_images") or []),
            "video_url": _opt_str(refer_videos[0].get("video_url")) if refer_videos else None,
            "voice_id": _opt_str(_dict(data.get("element_voice_info")).get("voice_id")),
        }


@dataclass(frozen=True)
class ElementResult(_ElementFields):
    """A completed ``kling-custom-element`` task's ``result_data``."""

    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ElementResult:
        return cls(**cls.parse_fields(data), raw=data)


@dataclass(frozen=True)
class Element(_ElementFields):
    """A stored element, as ``/v1/elements`` lists it."""

    id: str = ""
    task_id: str = ""
    created: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Element:
        fields = cls.parse_fields(data)
        fields["element_id"] = fields["element_id"] or str(data.get("id", ""))
        return cls(
            **fields,
            id=str(data.get("id", "")),
            task_id=str(data.get("task_id", "")),
            created=int(data.get("created", 0)),
            raw=data,
        )


@dataclass(frozen=True)
class DeletedElement:
    id: str
    deleted: bool
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeletedElement:
        return cls(id=str(data.get("id", "")), deleted=bool(data.get("deleted")), raw=data)


@dataclass(frozen=True)
class Task:
    """The contract's task object: the submit answer, the query answer and the callback body."""

    id: str
    status: TaskStatus
    progress: int
    created: int
    model: str
    can_cancel: bool
    estimated_time: int
    usage: Usage | None
    result: ElementResult | None
    error: TaskError | None
    # The media a completed task produced (the video models'), as URLs Reelgate serves; empty for an element task.
    results: list[str] = field(default_factory=list, hash=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True once the task is completed or failed (a cancelled task is failed with ``request_cancelled``)."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        info = _dict(data.get("task_info"))
        usage = data.get("usage")
        result = data.get("result_data")
        error = data.get("error")
        results = data.get("results")
        return cls(
            id=str(data.get("id", "")),
            status=cast(TaskStatus, str(data.get("status", ""))),
            progress=int(data.get("progress") or 0),
            created=int(data.get("created") or 0),
            model=str(data.get("model", "")),
            can_cancel=bool(info.get("can_cancel")),
            estimated_time=int(info.get("estimated_time") or 0),
            usage=Usage.from_dict(usage) if isinstance(usage, dict) else None,
            result=ElementResult.from_dict(result) if isinstance(result, dict) else None,
            error=TaskError(str(error.get("code", "")), str(error.get("message", "")))
            if isinstance(error, dict)
            else None,
            results=[str(url) for url in results] if isinstance(results, list) else [],
            raw=data,
        )


@dataclass(frozen=True)
class VideoTask(Task):
    """A task of a video model: on completion ``results`` holds the video URL(s), and ``usage.billing_rule`` is
    ``per_second`` (credits reserved for the requested seconds at submit, charged on completion)."""

    @property
    def video_url(self) -> str | None:
        """The first result (the video itself; a watermarked variant, when asked for, follows it)."""
        return self.results[0] if self.results else None

    @classmethod
    def from_task(cls, task: Task) -> VideoTask:
        return task if isinstance(task, VideoTask) else cls.from_dict(task.raw)


@dataclass(frozen=True)
class Model:
    """One catalogue entry from ``GET /v1/models``, priced for the caller's user group."""

    id: str
    type: str
    description: str
    billing_rule: str
    price: float | None
    user_group: str
    available: bool
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        price = data.get("price")
        return cls(
            id=str(data.get("id", "")),
            type=str(data.get("type", "")),
            description=str(data.get("description", "")),
            billing_rule=str(data.get("billing_rule", "")),
            price=None if price is None else _number(price),
            user_group=str(data.get("user_group", "")),
            available=bool(data.get("available", True)),
            raw=data,
        )


@dataclass(frozen=True)
class CallbackLog:
    """The callback delivery of one task: its state and every attempt (time, HTTP status or error, latency)."""

    task_id: str
    callback_url: str | None
    delivery: dict[str, Any] | None
    attempts: tuple[dict[str, Any], ...]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallbackLog:
        delivery = data.get("delivery")
        return cls(
            task_id=str(data.get("task_id", "")),
            callback_url=_opt_str(data.get("callback_url")),
            delivery=delivery if isinstance(delivery, dict) else None,
            attempts=tuple(_dict(a) for a in data.get("data") or []),
            raw=data,
        )


@dataclass(frozen=True)
class Credits:
    """``GET /v1/credits``: what the calling key may still spend and has spent, and its account's totals."""

    remaining: float  # the key's remaining credits (a key spends its account's balance)
    used: float  # what the key's own tasks were charged
    unlimited: bool
    account_remaining: float
    account_used: float
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credits:
        body = _dict(data.get("data"))
        token, user = _dict(body.get("token")), _dict(body.get("user"))
        return cls(
            remaining=_number(token.get("remaining_credits")),
            used=_number(token.get("used_credits")),
            unlimited=bool(token.get("unlimited_credits", False)),
            account_remaining=_number(user.get("remaining_credits")),
            account_used=_number(user.get("used_credits")),
            raw=data,
        )
