"""kling-o3-image-to-video: a video from frames, reference images and elements (Kling O3, the Omni endpoint);
billed per second of ``duration``."""

from __future__ import annotations

from reelgate.catalog.kling_o3_image_to_video.params import KlingO3ImageToVideo, parse
from reelgate.catalog.kling_o3_text_to_video import O3_RATES
from reelgate.catalog.spec import ModelSpec
from reelgate.catalog.video.elements import ElementRules
from reelgate.catalog.video.pricing import PerSecond, requested_seconds, usd_rates
from reelgate.catalog.video.spec import video_spec

NAME = "kling-o3-image-to-video"


def spec() -> ModelSpec:
    pricing = PerSecond(("720p", "1080p", "4k"), ("off", "on"), usd_rates(O3_RATES), requested_seconds)
    return video_spec(NAME, KlingO3ImageToVideo, parse, pricing,
                      "A video from frames, reference images and elements (Kling O3).", ElementRules())  # fmt: skip
