"""kling-o3-reference-to-video: a video from a prompt, reference images, image elements and an optional reference
video (Kling O3, the Omni endpoint); billed per second of ``duration``."""

from __future__ import annotations

from reelgate.catalog.kling_o3_reference_to_video.params import KlingO3ReferenceToVideo, parse
from reelgate.catalog.spec import ModelSpec
from reelgate.catalog.video.elements import ElementRules
from reelgate.catalog.video.pricing import NO_SOUND, PerSecond, requested_seconds, usd_rates
from reelgate.catalog.video.spec import video_spec

NAME = "kling-o3-reference-to-video"
# Contract §10: the reference and edit models cost $0.112/s at 720p and $0.150/s at 1080p (no sound switch).
REFERENCE_RATES = {("720p", NO_SOUND): 0.112, ("1080p", NO_SOUND): 0.150}


def spec() -> ModelSpec:
    pricing = PerSecond(("720p", "1080p"), (NO_SOUND,), usd_rates(REFERENCE_RATES), requested_seconds)
    return video_spec(NAME, KlingO3ReferenceToVideo, parse, pricing,
                      "A video from a prompt, reference images, image elements and a reference video (Kling O3).",
                      ElementRules(("image_refer",)))  # fmt: skip
