"""The model catalogue: one registration line per model; each model's folder (catalog/<model>/) says the rest.

Adding a model: a new folder whose ``spec()`` returns a ModelSpec (catalog/spec.py), and one line below.
"""

from __future__ import annotations

from collections.abc import Sequence

from reelgate.catalog import (
    custom_element,
    kling_o3_image_to_video,
    kling_o3_reference_to_video,
    kling_o3_text_to_video,
    kling_o3_video_edit,
    kling_v3_image_to_video,
    kling_v3_motion_control,
    kling_v3_text_to_video,
)
from reelgate.catalog.spec import Charge, ElementInfo, InlineMedia, ModelSpec
from reelgate.config import ConfigError, PriceOverride

__all__ = ["Charge", "ElementInfo", "InlineMedia", "ModelSpec", "default_catalog"]


def default_catalog(prices: Sequence[PriceOverride] = ()) -> dict[str, ModelSpec]:
    """Every model, with the operator's price rows (REELGATE_PRICES) applied; ConfigError for a row naming no model."""
    specs = [
        custom_element.spec(),
        kling_v3_text_to_video.spec(),
        kling_v3_image_to_video.spec(),
        kling_v3_motion_control.spec(),
        kling_o3_text_to_video.spec(),
        kling_o3_image_to_video.spec(),
        kling_o3_reference_to_video.spec(),
        kling_o3_video_edit.spec(),
    ]
    unknown = sorted({row.model for row in prices} - {spec.name for spec in specs})
    if unknown:
        raise ConfigError(f"REELGATE_PRICES names models the catalogue does not have: {', '.join(unknown)}")
    return {spec.name: spec.priced(prices) for spec in specs}
