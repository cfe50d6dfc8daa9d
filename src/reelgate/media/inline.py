"""Base64 media in a request body: the limits an item is checked against, the decoded item, where it goes back.

Which fields of a model's params carry media, and what else is checked across them, is the model's own rule
(catalog/<model>/inline.py); decoding and inspecting one item is the same for every model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from reelgate.errors import MEDIA_ERROR_CODES
from reelgate.media.fetch import decode_inline
from reelgate.media.images import ImageInfo, inspect_image
from reelgate.media.video import inspect_video

ASSET_REF = "asset:"  # a stored upload, as its params name it once stored: asset:<name>
_PART = re.compile(r"\.?([a-z_]+)|\[(\d+)\]")


@dataclass(frozen=True)
class InlineLimits:
    """The largest decoded item accepted, by kind."""

    image_max_bytes: int
    video_max_bytes: int

    def for_kind(self, kind: Literal["image", "video"]) -> int:
        return self.image_max_bytes if kind == "image" else self.video_max_bytes


@dataclass(frozen=True)
class Upload:
    """One checked Base64 item, decoded."""

    field: str
    kind: Literal["image", "video"]
    data: bytes
    ext: str


def decode_item(source: str, field: str, kind: Literal["image", "video"],
                limits: InlineLimits) -> tuple[Upload, ImageInfo | None]:  # fmt: skip
    """Decode one Base64 item and inspect it by its kind; an image's info comes back for comparisons."""
    limit = limits.for_kind(kind)
    data = decode_inline(source, field=field, max_bytes=limit, code=MEDIA_ERROR_CODES[kind])
    if kind == "image":
        info = inspect_image(data, field=field, max_bytes=limit)
        return Upload(field, kind, data, info.ext), info
    return Upload(field, kind, data, inspect_video(data, field=field, max_bytes=limit).ext), None


def assign(tree: dict[str, Any], field: str, value: str) -> None:
    """Set ``tree`` at a dotted path such as ``model_params.element_image_list.refer_images[0].image_url``."""
    parts: list[str | int] = [m.group(1) or int(m.group(2)) for m in _PART.finditer(field)][1:]
    node: Any = tree
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
