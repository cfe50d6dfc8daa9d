"""kling-v3-text-to-video's request (its EvoLink document's VideoGenerationRequest): fields at the top level."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from reelgate.catalog.video import rules
from reelgate.catalog.video.fields import AspectRatio, Prompt, Quality, Sound, Strict, V3Shots
from reelgate.catalog.video.parse import Problems, parse_video


class KlingV3TextToVideo(Strict):
    prompt: Prompt | None = None
    negative_prompt: Prompt | None = None
    duration: Annotated[int, Field(ge=3, le=15)] = 5
    aspect_ratio: AspectRatio | None = None
    quality: Quality = "720p"
    sound: Sound = "off"
    model_params: V3Shots = Field(default_factory=V3Shots)


def _rules(p: KlingV3TextToVideo) -> Problems:
    shots = [s.prompt for s in p.model_params.multi_prompt or []]
    return rules.shots(p.prompt, p.duration, p.model_params) + rules.element_refs(p.prompt, shots, 0)


def parse(raw: Any) -> KlingV3TextToVideo:
    return parse_video(KlingV3TextToVideo, raw, _rules)
