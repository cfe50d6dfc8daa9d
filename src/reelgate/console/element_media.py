"""An element's media as the console shows them, read from its stored result: the thumbnail (the frontal image, or
the middle frame of its reference video), every image and video, its name and description."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ElementMedia:
    name: str = ""
    description: str = ""
    reference_type: str = ""
    thumbnail: str | None = None
    images: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)


def _url(value: Any) -> str | None:
    # Stored results hold our own links (/assets/... or the storage's public URL); anything else is not shown.
    if isinstance(value, str) and value.startswith(("/", "https://", "http://")):
        return value
    return None


def _urls(items: Any, key: str) -> list[str]:
    found = [_url(item.get(key)) for item in items or [] if isinstance(item, dict)]
    return [url for url in found if url]


def element_media(data: str | dict[str, Any] | None) -> ElementMedia:
    """What to show of an element whose stored ``data`` is its result (JSON text or already parsed)."""
    parsed = json.loads(data) if isinstance(data, str) else data or {}
    if not isinstance(parsed, dict):
        return ElementMedia()
    image_list = parsed.get("element_image_list") or {}
    video_list = parsed.get("element_video_list") or {}
    images = [u for u in [_url(image_list.get("frontal_image"))] if u]
    images += _urls(image_list.get("refer_images"), "image_url")
    videos = _urls(video_list.get("refer_videos"), "video_url")
    thumbnail = images[0] if images else _url(video_list.get("thumbnail_url"))
    return ElementMedia(str(parsed.get("element_name") or ""), str(parsed.get("element_description") or ""),
                        str(parsed.get("reference_type") or ""), thumbnail, images, videos)  # fmt: skip
