"""kling-v3-image-to-video: a video from a first frame (and optional last frame), with up to 3 elements (Kling V3);
billed per second of ``duration``."""

from __future__ import annotations

from reelgate.catalog.kling_v3_image_to_video.params import KlingV3ImageToVideo, parse
from reelgate.catalog.kling_v3_text_to_video import V3_RATES
from reelgate.catalog.spec import ModelSpec
from reelgate.catalog.video.elements import ElementRules
from reelgate.catalog.video.pricing import PerSecond, requested_seconds, usd_rates
from reelgate.catalog.video.spec import video_spec

NAME = "kling-v3-image-to-video"


def spec() -> ModelSpec:
    pricing = PerSecond(("720p", "1080p", "4k"), ("off", "on"), usd_rates(V3_RATES), requested_seconds)
    return video_spec(NAME, KlingV3ImageToVideo, parse, pricing,
                      "A video from a first frame, with up to 3 elements (Kling V3).", ElementRules())  # fmt: skip
