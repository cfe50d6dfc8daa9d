"""A video task's media inputs (``image_start``, ``image_end``, ``image_urls``, ``video_url``, ``video_urls``):
fetched SSRF-safe, checked by content, size and dimensions, and stored, before any upstream call.

Images follow the element's image rules (reelgate.media.images: JPEG/PNG, at most 10 MB, sides of 300 px or more,
aspect within 1:2.5-2.5:1), as every video model's document states. Videos are MP4/MOV by content with the rules
of the model's document (``VideoRules``); the probe runs in the media pool like every other decode.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Literal

import av

from reelgate.errors import MediaError
from reelgate.media.images import inspect_image, size_text
from reelgate.media.video import clip_duration

MediaKind = Literal["image", "video"]
_VIDEO_CODE = "invalid_parameters"


@dataclass(frozen=True)
class Input:
    """One media item of a video task: its dotted field, where it comes from, and its kind."""

    field: str
    source: str
    kind: MediaKind


@dataclass(frozen=True)
class VideoRules:
    """A model's rules for an input video (from its EvoLink document)."""

    min_seconds: float = 3.0
    max_seconds: float | None = None
    min_side: int = 720
    max_side: int = 2160
    max_bytes: int = 200 * 1024 * 1024


@dataclass(frozen=True)
class VideoFacts:
    ext: str
    width: int
    height: int
    duration: float


def input_items(params: dict[str, Any]) -> list[Input]:
    """The task's media inputs in a fixed order (first frame, last frame, images, videos)."""
    items: list[Input] = []
    for name in ("image_start", "image_end"):
        if isinstance(params.get(name), str):
            items.append(Input(name, params[name], "image"))
    items += [Input(f"image_urls[{i}]", u, "image") for i, u in enumerate(params.get("image_urls") or [])]
    if isinstance(params.get("video_url"), str):
        items.append(Input("video_url", params["video_url"], "video"))
    items += [Input(f"video_urls[{i}]", u, "video") for i, u in enumerate(params.get("video_urls") or [])]
    return items


def check_image(data: bytes, field: str, max_bytes: int) -> str:
    """The stored extension of an image that passes the rules (module level: a pool process runs it)."""
    return inspect_image(data, field=field, max_bytes=max_bytes).ext


def check_video(data: bytes, field: str, rules: VideoRules) -> VideoFacts:
    """An input video's facts, or MediaError naming ``field`` and the rule (module level: a pool process runs it)."""
    try:
        return _check_video(data, rules)
    except _Refused as exc:
        raise MediaError(_VIDEO_CODE, f"{field} {exc}", param=field) from None


class _Refused(Exception):
    """Internal: a rule broken, the message without the field name."""


def _check_video(data: bytes, rules: VideoRules) -> VideoFacts:
    if len(data) < 12 or data[4:8] != b"ftyp":
        raise _Refused("must be an MP4 or MOV video")
    ext = "mov" if data[8:12] == b"qt  " else "mp4"
    if len(data) > rules.max_bytes:
        raise _Refused(f"is larger than {size_text(rules.max_bytes)}")
    try:
        with av.open(io.BytesIO(data), mode="r", format="mov") as media:
            if not media.streams.video:
                raise _Refused("has no video track")
            stream = media.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            duration = _duration(media, stream)
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise _Refused("could not be read as a video (corrupt or unsupported file)") from exc
    if duration < rules.min_seconds - 0.05 or (rules.max_seconds is not None and duration > rules.max_seconds + 0.05):
        span = (
            f"{rules.min_seconds:g}-{rules.max_seconds:g}" if rules.max_seconds else f"at least {rules.min_seconds:g}"
        )
        raise _Refused(f"must be {span} seconds long, got {duration:.1f} s")
    if not (rules.min_side <= width <= rules.max_side and rules.min_side <= height <= rules.max_side):
        raise _Refused(f"must have width and height within {rules.min_side}-{rules.max_side} px, got {width}x{height}")
    return VideoFacts(ext, width, height, round(duration, 3))


def _duration(media: Any, stream: Any) -> float:
    duration = clip_duration(media, stream)
    if duration is None:
        raise _Refused("has no readable duration")
    return duration
