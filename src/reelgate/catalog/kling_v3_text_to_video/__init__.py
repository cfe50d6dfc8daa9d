"""kling-v3-text-to-video: a video from a prompt (Kling V3), no elements; billed per second of ``duration``."""

from __future__ import annotations

from reelgate.catalog.kling_v3_text_to_video.params import KlingV3TextToVideo, parse
from reelgate.catalog.spec import ModelSpec
from reelgate.catalog.video.pricing import PerSecond, requested_seconds, usd_rates
from reelgate.catalog.video.spec import video_spec

NAME = "kling-v3-text-to-video"
# EvoLink prices Kling V3 text and image to video alike (contract §10); 4k has no published price.
V3_RATES = {("720p", "off"): 0.075, ("720p", "on"): 0.113, ("1080p", "off"): 0.100, ("1080p", "on"): 0.150}


def spec() -> ModelSpec:
    pricing = PerSecond(("720p", "1080p", "4k"), ("off", "on"), usd_rates(V3_RATES), requested_seconds)
    return video_spec(NAME, KlingV3TextToVideo, parse, pricing, "A video from a text prompt (Kling V3).")
