"""kling-custom-element's Base64 media rules: which fields carry media, and no refer image may repeat the frontal."""

from __future__ import annotations

from typing import Any

from reelgate.catalog.custom_element.params import CustomElementParams, media_items
from reelgate.errors import MediaError
from reelgate.media.images import ImageInfo, is_near_duplicate
from reelgate.media.inline import InlineLimits, Upload, assign, decode_item
from reelgate.params import is_url


def has_inline_media(params: CustomElementParams) -> bool:
    return not all(is_url(source) for _, source, _ in media_items(params))


def check_inline(params: CustomElementParams, limits: InlineLimits) -> tuple[dict[str, Any], tuple[Upload, ...]]:
    """Decode and inspect every Base64 item (URLs are fetched by the task); refuse near-duplicate refer images."""
    dump = params.model_dump(exclude_none=True)
    frontal: ImageInfo | None = None
    refers: list[tuple[str, ImageInfo]] = []
    uploads: list[Upload] = []
    for field, source, kind in media_items(params):
        if is_url(source):
            continue
        upload, info = decode_item(source, field, kind, limits)
        if info is not None and field.endswith("frontal_image"):
            frontal = info
        elif info is not None:
            refers.append((field, info))
        assign(dump, field, "")
        uploads.append(upload)
    problem = duplicate_problem(frontal, refers)
    if problem is not None:
        raise problem
    return dump, tuple(uploads)


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
