"""kling-o3-reference-to-video's request (its EvoLink document's VideoGenerationRequest): a prompt with reference
images, image elements and an optional reference video, fields at the top level."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from reelgate.catalog.video import rules
from reelgate.catalog.video.fields import (
    AspectRatio,
    Elements7,
    ImageUrls,
    Prompt,
    StdQuality,
    Strict,
    VideoUrl,
    Watermark,
)
from reelgate.catalog.video.parse import Problems, parse_video

MAX_WITH_VIDEO = 4  # images + elements with a reference video
MAX_WITHOUT_VIDEO = 7


class ReferenceParams(Strict):
    element_list: Elements7 | None = None
    watermark_info: Watermark | None = None


class KlingO3ReferenceToVideo(Strict):
    prompt: Prompt | None = None
    video_url: VideoUrl | None = None
    keep_original_sound: bool = True
    image_urls: ImageUrls | None = None
    duration: Annotated[int, Field(ge=3, le=10)] = 5
    aspect_ratio: AspectRatio | None = None
    quality: StdQuality = "720p"
    model_params: ReferenceParams = Field(default_factory=ReferenceParams)


def _rules(p: KlingO3ReferenceToVideo) -> Problems:
    elements = len(p.model_params.element_list or [])
    limit, what = (MAX_WITH_VIDEO, "with video_url") if p.video_url else (MAX_WITHOUT_VIDEO, "without a video")
    return (rules.prompt_required(p.prompt) + rules.element_refs(p.prompt, [], elements)
            + rules.at_most("model_params.element_list", len(p.image_urls or []) + elements, limit,
                            f"image_urls and elements {what}"))  # fmt: skip


def parse(raw: Any) -> KlingO3ReferenceToVideo:
    return parse_video(KlingO3ReferenceToVideo, raw, _rules)
