"""Check a reference video with PyAV and make a thumbnail: EvoLink's newer rule (contract 9), MP4/MOV by content,
3-8 s, width and height each within 720-2160 px, aspect within 1:2.5-2.5:1."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Literal

import av
from PIL import Image

from reelgate.errors import MEDIA_ERROR_CODES, MediaError
from reelgate.media.images import size_text

MIN_SECONDS = 3.0
MAX_SECONDS = 8.0
# Containers round durations to their time base and the last frame's length; 8.03 s is still an 8 s clip.
DURATION_TOLERANCE = 0.05
MIN_SIDE = 720
MAX_SIDE = 2160
MAX_ASPECT = 2.5  # the longer side at most 2.5 times the shorter, either way round (as for images)
THUMBNAIL_MAX_SIDE = 512
# Header durations beyond a day are corrupt or hostile, never a real clip.
_SANE_MAX_SECONDS = 86_400.0
# Bound the decode work when the seek lands far before the middle (e.g. a single keyframe at the start).
_MAX_FRAMES_AFTER_SEEK = 600

_CODE = MEDIA_ERROR_CODES["video"]
# ftyp major brands of MP4-family files; QuickTime's is "qt  ".
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"mp71", b"avc1", b"M4V "}
    | {b"M4VP", b"MSNV", b"dash", b"mmp4", b"XAVC", b"f4v ", b"3gp4", b"3gp5", b"3gp6", b"3g2a"}
)


@dataclass(frozen=True)
class VideoInfo:
    container: Literal["mp4", "mov"]
    width: int
    height: int
    duration: float
    thumbnail_jpeg: bytes
    ext: str


class _Refused(Exception):
    """Internal: a rule broken, the message without the field name."""


def inspect_video(data: bytes, *, field: str, max_bytes: int) -> VideoInfo:
    """Apply the contract's video rules to ``data``; raise MediaError naming ``field`` and the rule broken."""
    try:
        return _inspect(data, max_bytes)
    except _Refused as exc:
        raise MediaError(_CODE, f"{field} {exc}", param=field) from None


def _inspect(data: bytes, max_bytes: int) -> VideoInfo:
    container = _sniff(data)
    if len(data) > max_bytes:
        raise _Refused(f"is larger than {size_text(max_bytes)}")
    try:
        # format="mov" is FFmpeg's demuxer for both MP4 and MOV: no probing, so no other demuxer sees the input.
        with av.open(io.BytesIO(data), mode="r", format="mov") as media:
            return _probe(media, container)
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise _Refused("could not be read as a video (corrupt or unsupported file)") from exc


def _sniff(data: bytes) -> Literal["mp4", "mov"]:
    if len(data) >= 12 and data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand == b"qt  ":
            return "mov"
        if brand in _MP4_BRANDS:
            return "mp4"
    raise _Refused("must be an MP4 or MOV video")


def _probe(media: Any, container: Literal["mp4", "mov"]) -> VideoInfo:
    if not media.streams.video:
        raise _Refused("has no video track")
    stream = media.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    duration = _duration(media, stream)
    _check_rules(width, height, duration)
    frame = _middle_frame(media, stream, duration)
    rotation = int(getattr(frame, "rotation", 0) or 0)
    if rotation % 180:
        width, height = height, width  # shown upright, a rotated 1920x1080 clip is 1080x1920
    return VideoInfo(
        container=container,
        width=width,
        height=height,
        duration=round(duration, 3),
        thumbnail_jpeg=_thumbnail(frame.to_image(), rotation),
        ext=container,
    )


def clip_duration(media: Any, stream: Any) -> float | None:
    """Seconds an opened clip lasts (the longest its container or video track claims), or None when neither gives a
    sane figure (shared with the video models' input check)."""
    candidates: list[float] = []
    if media.duration is not None:
        candidates.append(media.duration / av.time_base)
    if stream.duration is not None and stream.time_base:
        candidates.append(float(stream.duration * stream.time_base))
    sane = [d for d in candidates if math.isfinite(d) and 0 < d < _SANE_MAX_SECONDS]
    return max(sane) if sane else None


def _duration(media: Any, stream: Any) -> float:
    duration = clip_duration(media, stream)
    if duration is None:
        raise _Refused("has no readable duration")
    return duration


def _check_rules(width: int, height: int, duration: float) -> None:
    if not MIN_SECONDS - DURATION_TOLERANCE <= duration <= MAX_SECONDS + DURATION_TOLERANCE:
        raise _Refused(f"must be {MIN_SECONDS:g}-{MAX_SECONDS:g} seconds long, got {duration:.1f} s")
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise _Refused(f"must have width and height within {MIN_SIDE}-{MAX_SIDE} px, got {width}x{height}")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise _Refused(f"must have an aspect ratio between 1:2.5 and 2.5:1, got {width}x{height}")


def _middle_frame(media: Any, stream: Any, duration: float) -> Any:
    target = duration / 2
    if stream.time_base:
        # Seeking lands on the keyframe at or before the target; decode forward from there.
        media.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
    frame = None
    for count, frame in enumerate(media.decode(stream)):
        if frame.time is None or frame.time >= target or count >= _MAX_FRAMES_AFTER_SEEK:
            return frame
    if frame is None:
        raise _Refused("has no decodable video frame")
    return frame


def _thumbnail(image: Image.Image, rotation: int) -> bytes:
    if rotation % 360:
        # PyAV reports the display matrix angle counter-clockwise, which is PIL's rotate direction.
        image = image.rotate(rotation, expand=True)
    image.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()
