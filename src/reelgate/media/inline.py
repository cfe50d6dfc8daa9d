"""Base64 media at submit: check it now (a 400 beats a failed task) and keep it out of the task row."""

from __future__ import annotations

import re
from typing import Any, Literal

from reelgate.assets import AssetStore
from reelgate.config import Settings
from reelgate.errors import MediaError
from reelgate.media.fetch import decode_inline
from reelgate.media.images import ImageInfo, inspect_image, is_near_duplicate
from reelgate.media.video import inspect_video
from reelgate.params import CustomElementParams, is_url

ASSET_REF = "asset:"
_PART = re.compile(r"\.?([a-z_]+)|\[(\d+)\]")

MediaItems = list[tuple[str, str, Literal["image", "video"]]]


def _assign(tree: dict[str, Any], field: str, value: str) -> None:
    """Set ``tree`` at a dotted path such as ``model_params.element_image_list.refer_images[0].image_url``."""
    parts: list[str | int] = [m.group(1) or int(m.group(2)) for m in _PART.finditer(field)][1:]
    node: Any = tree
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def duplicate_problem(frontal: ImageInfo | None, refers: list[tuple[str, ImageInfo]]) -> MediaError | None:
    """The first refer image that is a near-duplicate of the frontal image, as a MediaError."""
    if frontal is None:
        return None
    for field, info in refers:
        if is_near_duplicate(frontal, info):
            return MediaError(
                "image_processing_error",
                f"{field} is a near-duplicate of the frontal image; each refer image must show another view",
                param=field,
            )
    return None


def store_inline_media(
    params: CustomElementParams, items: MediaItems, assets: AssetStore, settings: Settings
) -> dict[str, Any]:
    """Check every Base64 item, store it content-addressed, and return params with ``asset:<name>`` in its place."""
    dump = params.model_dump(exclude_none=True)
    frontal: ImageInfo | None = None
    refers: list[tuple[str, ImageInfo]] = []
    for field, source, kind in items:
        if is_url(source):
            continue
        if kind == "image":
            data = decode_inline(source, field=field, max_bytes=settings.image_max_bytes)
            info = inspect_image(data, field=field, max_bytes=settings.image_max_bytes)
            if field.endswith("frontal_image"):
                frontal = info
            else:
                refers.append((field, info))
            name = assets.put(data, info.ext)
        else:
            data = decode_inline(source, field=field, max_bytes=settings.video_max_bytes)
            name = assets.put(data, inspect_video(data, field=field, max_bytes=settings.video_max_bytes).ext)
        _assign(dump, field, ASSET_REF + name)
    problem = duplicate_problem(frontal, refers)
    if problem is not None:
        raise problem
    return dump
