"""kling-v3-motion-control's request (its EvoLink document's VideoGenerationRequest): a character image moved like
a reference video; ``model_params`` is required."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from reelgate.catalog.video import rules
from reelgate.catalog.video.fields import ElementRef, ImageUrl, Prompt, StdQuality, Strict, VideoUrl, Watermark
from reelgate.catalog.video.parse import Problems, parse_video

IMAGE_ORIENTATION_SECONDS = 10  # the output follows the reference video: at most 10 s facing the image ...
VIDEO_ORIENTATION_SECONDS = 30  # ... and at most 30 s facing the video


class MotionParams(Strict):
    character_orientation: Literal["image", "video"]
    element_list: Annotated[list[ElementRef], Field(max_length=1)] | None = None
    keep_sound: bool = True
    watermark_info: Watermark | None = None


class KlingV3MotionControl(Strict):
    image_urls: Annotated[list[ImageUrl], Field(min_length=1, max_length=1)]
    video_urls: Annotated[list[VideoUrl], Field(min_length=1, max_length=1)]
    prompt: Prompt | None = None
    quality: StdQuality = "720p"
    model_params: MotionParams


def _rules(p: KlingV3MotionControl) -> Problems:
    elements = len(p.model_params.element_list or [])
    problems = rules.element_refs(p.prompt, [], elements)
    if elements and p.model_params.character_orientation != "video":
        problems.append(("model_params.character_orientation", "model_params.character_orientation must be video "
                         "when model_params.element_list is given"))  # fmt: skip
    return problems


def parse(raw: Any) -> KlingV3MotionControl:
    return parse_video(KlingV3MotionControl, raw, _rules)


def reserved_seconds(params: Any) -> int:
    """The output is as long as the reference video, known only once it is read: reserve the longest allowed."""
    if params.model_params.character_orientation == "image":
        return IMAGE_ORIENTATION_SECONDS
    return VIDEO_ORIENTATION_SECONDS
