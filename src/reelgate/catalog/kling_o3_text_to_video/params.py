"""kling-o3-text-to-video's request (its EvoLink document's VideoGenerationRequest): fields at the top level."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from reelgate.catalog.video import rules
from reelgate.catalog.video.fields import AspectRatio, Elements7, O3Shots, Prompt, Quality, Sound, Strict
from reelgate.catalog.video.parse import Problems, parse_video


class O3TextParams(O3Shots):
    element_list: Elements7 | None = None


class KlingO3TextToVideo(Strict):
    prompt: Prompt | None = None
    duration: Annotated[int, Field(ge=3, le=15)] = 5
    aspect_ratio: AspectRatio = "16:9"
    quality: Quality = "720p"
    sound: Sound = "off"
    model_params: O3TextParams = Field(default_factory=O3TextParams)


def _rules(p: KlingO3TextToVideo) -> Problems:
    return rules.shot_prompts(p.prompt, p.duration, p.model_params, len(p.model_params.element_list or []))


def parse(raw: Any) -> KlingO3TextToVideo:
    return parse_video(KlingO3TextToVideo, raw, _rules)
