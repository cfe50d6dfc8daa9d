"""The ModelSpec every Kling video model builds: whole-body params, element rules, per-second billing, Kling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from reelgate.catalog.spec import ModelSpec
from reelgate.catalog.video.elements import KLING, ElementRules
from reelgate.catalog.video.pricing import PerSecond
from reelgate.catalog.video.schema import RequestSchema

TYPICAL_SECONDS = 300  # Kling renders a 5-10 s clip in a few minutes


def video_spec(name: str, params: type[BaseModel], parse: Callable[[Any], BaseModel], pricing: PerSecond,
               description: str, elements: ElementRules | None = None) -> ModelSpec:  # fmt: skip
    return ModelSpec(
        name=name,
        params=params,
        parse=parse,
        billing_rule="per_second",
        prices={},
        schema=RequestSchema(name, params),
        default_provider=KLING,
        description=description,
        typical_seconds=TYPICAL_SECONDS,
        reads_body=True,
        elements=elements,
        pricing=pricing,
    )
