"""kling-o3-video-edit: edits a video with an instruction, reference images and image elements (Kling O3, the Omni
endpoint); billed per second of the input video: the longest allowed is reserved, the probed length captured."""

from __future__ import annotations

from reelgate.catalog.kling_o3_reference_to_video import REFERENCE_RATES
from reelgate.catalog.kling_o3_video_edit.params import MAX_INPUT_SECONDS, KlingO3VideoEdit, parse, reserved_seconds
from reelgate.catalog.spec import ModelSpec
from reelgate.catalog.video.elements import ElementRules
from reelgate.catalog.video.pricing import NO_SOUND, PerSecond, usd_rates
from reelgate.catalog.video.spec import video_spec

NAME = "kling-o3-video-edit"
__all__ = ["MAX_INPUT_SECONDS", "NAME", "spec"]


def spec() -> ModelSpec:
    pricing = PerSecond(("720p", "1080p"), (NO_SOUND,), usd_rates(REFERENCE_RATES), reserved_seconds)
    return video_spec(NAME, KlingO3VideoEdit, parse, pricing,
                      "Edits a video with an instruction, reference images and image elements (Kling O3).",
                      ElementRules(("image_refer",)))  # fmt: skip
