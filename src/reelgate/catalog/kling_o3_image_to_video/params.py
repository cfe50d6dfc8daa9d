"""kling-o3-image-to-video's request (its EvoLink document's VideoGenerationRequest): first/last frame, reference
images and elements, fields at the top level."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from reelgate.catalog.video import rules
from reelgate.catalog.video.fields import (
    AspectRatio,
    Elements7,
    ImageUrl,
    ImageUrls,
    O3Shots,
    Prompt,
    Quality,
    Sound,
    Strict,
)
from reelgate.catalog.video.parse import Problems, parse_video

MAX_WITH_FIRST_FRAME = 3  # elements when image_start is given
MAX_IMAGES_AND_ELEMENTS = 7
MAX_IMAGES_WITH_LAST_FRAME = 2


class O3ImageParams(O3Shots):
    element_list: Elements7 | None = None


class KlingO3ImageToVideo(Strict):
    prompt: Prompt | None = None
    image_start: ImageUrl | None = None
    image_end: ImageUrl | None = None
    image_urls: ImageUrls | None = None
    duration: Annotated[int, Field(ge=3, le=15)] = 5
    aspect_ratio: AspectRatio | None = None
    quality: Quality = "720p"
    sound: Sound = "off"
    model_params: O3ImageParams = Field(default_factory=O3ImageParams)


def _counts(p: KlingO3ImageToVideo, elements: int) -> Problems:
    images = (p.image_start is not None) + (p.image_end is not None) + len(p.image_urls or [])
    problems: Problems = []
    if p.image_end is not None and p.image_start is None:
        problems.append(("image_end", "image_end needs image_start (a last frame needs a first frame)"))
    if p.image_end is not None and images > MAX_IMAGES_WITH_LAST_FRAME:
        problems.append(("image_end", f"image_end is not supported with more than {MAX_IMAGES_WITH_LAST_FRAME} "
                                      f"images in all (got {images})"))  # fmt: skip
    if p.image_start is not None:
        problems += rules.at_most("model_params.element_list", elements, MAX_WITH_FIRST_FRAME,
                                  "elements with a first frame (image_start)")  # fmt: skip
    problems += rules.at_most("model_params.element_list", images + elements, MAX_IMAGES_AND_ELEMENTS,
                              "images (image_start, image_end, image_urls) and elements")  # fmt: skip
    return problems


def _rules(p: KlingO3ImageToVideo) -> Problems:
    elements = len(p.model_params.element_list or [])
    return rules.shot_prompts(p.prompt, p.duration, p.model_params, elements) + _counts(p, elements)


def parse(raw: Any) -> KlingO3ImageToVideo:
    return parse_video(KlingO3ImageToVideo, raw, _rules)
