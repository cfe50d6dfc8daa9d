"""kling-o3-video-edit's request (its EvoLink document's VideoGenerationRequest): the video to edit, an
instruction, reference images and image elements, fields at the top level."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from reelgate.catalog.video import rules
from reelgate.catalog.video.fields import Elements7, ImageUrls, Prompt, StdQuality, Strict, VideoUrl, Watermark
from reelgate.catalog.video.parse import Problems, parse_video

MAX_IMAGES_AND_ELEMENTS = 4
MAX_INPUT_SECONDS = 10  # Kling edits 3-10 s of video; the input's length is billed, known once it is probed


class EditParams(Strict):
    element_list: Elements7 | None = None
    watermark_info: Watermark | None = None


class KlingO3VideoEdit(Strict):
    # Required although the document lists only ``model``: there is nothing to edit without it.
    video_url: VideoUrl
    prompt: Prompt | None = None
    keep_original_sound: bool = True
    image_urls: ImageUrls | None = None
    quality: StdQuality = "720p"
    model_params: EditParams = Field(default_factory=EditParams)


def _rules(p: KlingO3VideoEdit) -> Problems:
    elements = len(p.model_params.element_list or [])
    return rules.element_refs(p.prompt, [], elements) + rules.at_most(
        "model_params.element_list", len(p.image_urls or []) + elements, MAX_IMAGES_AND_ELEMENTS,
        "image_urls and elements")  # fmt: skip


def parse(raw: Any) -> KlingO3VideoEdit:
    return parse_video(KlingO3VideoEdit, raw, _rules)


def reserved_seconds(params: Any) -> int:
    """Billed on the input video's length, known only once it is probed: reserve the longest the model takes."""
    return MAX_INPUT_SECONDS
