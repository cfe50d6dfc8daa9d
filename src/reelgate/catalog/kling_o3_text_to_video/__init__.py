"""kling-o3-text-to-video: a video from a prompt with up to 7 elements (Kling O3, the Omni endpoint); billed per
second of ``duration``."""

from __future__ import annotations

from reelgate.catalog.kling_o3_text_to_video.params import KlingO3TextToVideo, parse
from reelgate.catalog.spec import ModelSpec
from reelgate.catalog.video.elements import ElementRules
from reelgate.catalog.video.pricing import PerSecond, requested_seconds, usd_rates
from reelgate.catalog.video.spec import video_spec

NAME = "kling-o3-text-to-video"
# EvoLink prices Kling O3 text and image to video alike (contract §10); 4k has no published price.
O3_RATES = {("720p", "off"): 0.075, ("720p", "on"): 0.100, ("1080p", "off"): 0.100, ("1080p", "on"): 0.125}


def spec() -> ModelSpec:
    pricing = PerSecond(("720p", "1080p", "4k"), ("off", "on"), usd_rates(O3_RATES), requested_seconds)
    return video_spec(NAME, KlingO3TextToVideo, parse, pricing,
                      "A video from a text prompt, with up to 7 elements (Kling O3).", ElementRules())  # fmt: skip
