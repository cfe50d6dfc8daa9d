"""kling-custom-element: reference images or one video become a reusable subject element (element_id).

Everything this model owns lives in this folder: its params (params.py), its Base64 media rules (inline.py), the
pipeline that loads, checks and stores its media for a task (pipeline.py), its public result (result.py) and
its OpenAPI schema (schema.py).
The providers that serve it (in providers/) call the pipeline and the result.
"""

from __future__ import annotations

from reelgate.catalog.custom_element.inline import check_inline, has_inline_media
from reelgate.catalog.custom_element.params import CustomElementParams, media_items, parse_custom_element
from reelgate.catalog.custom_element.pipeline import MediaPipeline, StoredMedia
from reelgate.catalog.custom_element.result import result_data
from reelgate.catalog.custom_element.schema import json_schema
from reelgate.catalog.spec import InlineMedia, ModelSpec

CUSTOM_ELEMENT = "kling-custom-element"

__all__ = ["CUSTOM_ELEMENT", "CustomElementParams", "MediaPipeline", "StoredMedia", "media_items", "result_data",
           "spec"]  # fmt: skip


def spec() -> ModelSpec:
    return ModelSpec(
        name=CUSTOM_ELEMENT,
        params=CustomElementParams,
        parse=parse_custom_element,
        billing_rule="per_call",
        prices={"default": 1000},
        inline=InlineMedia(present=has_inline_media, check=check_inline),
        registers_element=True,
        schema=json_schema,
        description="Turns reference images or one video into a reusable subject element (element_id).",
    )
