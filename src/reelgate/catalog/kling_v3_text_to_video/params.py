"""kling-v3-text-to-video's request (its EvoLink document's VideoGenerationRequest): fields at the top level."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, JsonValue
from pydantic.json_schema import SkipJsonSchema

from reelgate.catalog.video import rules
from reelgate.catalog.video.fields import AspectRatio, Prompt, Quality, Sound, Strict, V3Shots
from reelgate.catalog.video.parse import Problems, parse_video


class V3TextParams(V3Shots):
    # Not in the document: the model takes no elements. Read only to refuse it, rather than ignore it as an unknown
    # field and bill a video made without the character the caller asked for.
    element_list: SkipJsonSchema[JsonValue] = Field(default=None, exclude=True)


class KlingV3TextToVideo(Strict):
    prompt: Prompt | None = None
    negative_prompt: Prompt | None = None
    duration: Annotated[int, Field(ge=3, le=15)] = 5
    aspect_ratio: AspectRatio | None = None
    quality: Quality = "720p"
    sound: Sound = "off"
    model_params: V3TextParams = Field(default_factory=V3TextParams)


def _rules(p: KlingV3TextToVideo) -> Problems:
    problems = rules.shot_prompts(p.prompt, p.duration, p.model_params, 0)
    if p.model_params.element_list:
        problems.append(("model_params.element_list", "model_params.element_list is not taken by this model (it "
                         "uses no elements); use kling-v3-image-to-video or kling-o3-text-to-video"))  # fmt: skip
    return problems


def parse(raw: Any) -> KlingV3TextToVideo:
    return parse_video(KlingV3TextToVideo, raw, _rules)
