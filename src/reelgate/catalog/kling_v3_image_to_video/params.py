"""kling-v3-image-to-video's request (its EvoLink document's VideoGenerationRequest): fields at the top level."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from reelgate.catalog.video import rules
from reelgate.catalog.video.fields import Elements3, ImageUrl, Prompt, Quality, Sound, Strict, V3Shots
from reelgate.catalog.video.parse import Problems, parse_video


class V3ImageParams(V3Shots):
    element_list: Elements3 | None = None


class KlingV3ImageToVideo(Strict):
    image_start: ImageUrl
    image_end: ImageUrl | None = None
    prompt: Prompt | None = None
    negative_prompt: Prompt | None = None
    duration: Annotated[int, Field(ge=3, le=15)] = 5
    quality: Quality = "720p"
    sound: Sound = "off"
    model_params: V3ImageParams = Field(default_factory=V3ImageParams)


def _rules(p: KlingV3ImageToVideo) -> Problems:
    return rules.shot_prompts(p.prompt, p.duration, p.model_params, len(p.model_params.element_list or []))


def parse(raw: Any) -> KlingV3ImageToVideo:
    return parse_video(KlingV3ImageToVideo, raw, _rules)
