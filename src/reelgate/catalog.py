"""The model catalogue as data: each model's params parser, billing rule, prices per user group and provider."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reelgate.params import CustomElementParams, parse_custom_element

CUSTOM_ELEMENT = "kling-custom-element"


@dataclass(frozen=True)
class ModelSpec:
    """One model: how its params are validated, how it is billed, what it costs per group and who serves it."""

    name: str
    parse: Callable[[Any], CustomElementParams]
    billing_rule: str
    prices: Mapping[str, int]  # millicredits per call, by user group
    default_provider: str = "local"
    description: str = ""
    typical_seconds: int = 30
    groups: frozenset[str] = field(default_factory=frozenset)

    def price_for(self, group: str) -> int | None:
        """The price for a group; None means the group may not use the model."""
        if self.groups and group not in self.groups:
            return None
        return self.prices.get(group, self.prices.get("default"))

    def public(self, group: str) -> dict[str, Any]:
        price = self.price_for(group)
        return {
            "id": self.name,
            "object": "model",
            "type": "video",
            "description": self.description,
            "billing_rule": self.billing_rule,
            "price": None if price is None else price / 1000,
            "user_group": group,
            "available": price is not None,
        }


def default_catalog() -> dict[str, ModelSpec]:
    spec = ModelSpec(
        name=CUSTOM_ELEMENT,
        parse=parse_custom_element,
        billing_rule="per_call",
        prices={"default": 1000},
        description="Turns reference images or one video into a reusable subject element (element_id).",
    )
    return {spec.name: spec}
