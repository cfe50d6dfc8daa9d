"""kling-v3-motion-control: a character image (or one video_refer element) moved like a reference video (Kling V3);
billed per second of output, which follows the reference video: the longest allowed is reserved, the actual
length captured."""

from __future__ import annotations

from reelgate.catalog.kling_v3_motion_control.params import KlingV3MotionControl, parse, reserved_seconds
from reelgate.catalog.spec import ModelSpec
from reelgate.catalog.video.elements import ElementRules
from reelgate.catalog.video.pricing import NO_SOUND, PerSecond, usd_rates
from reelgate.catalog.video.spec import video_spec

NAME = "kling-v3-motion-control"
# No published EvoLink price: Kling V3's silent per-second prices (the model has no sound switch).
RATES = {("720p", NO_SOUND): 0.075, ("1080p", NO_SOUND): 0.100}


def spec() -> ModelSpec:
    pricing = PerSecond(("720p", "1080p"), (NO_SOUND,), usd_rates(RATES), reserved_seconds)
    return video_spec(NAME, KlingV3MotionControl, parse, pricing,
                      "A character image moved like a reference video (Kling V3 motion control).",
                      ElementRules(("video_refer",)))  # fmt: skip
