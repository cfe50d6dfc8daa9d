"""A model as data: how its params are parsed, which Base64 media it takes, what it produces, costs and who serves it.

Nothing here knows a particular model: each model's folder (catalog/<model>/) fills a ModelSpec with its own
functions, and the service, the worker and the API ask only these fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from reelgate.media.inline import InlineLimits, Upload

# A model's check of its Base64 media at submit (run in a media pool process): the params as stored (every inline
# item replaced by "" until it is stored) and the decoded items. Raises InvalidRequest or MediaError.
InlineCheck = Callable[[Any, InlineLimits], tuple[dict[str, Any], tuple[Upload, ...]]]
# A model's OpenAPI params schema, given the prefix of component references: (its schema, the components it uses).
SchemaHook = Callable[[str], tuple[dict[str, Any], dict[str, Any]]]


@dataclass(frozen=True)
class InlineMedia:
    """A model's Base64 media rules. Module-level functions only: a pool process receives them pickled."""

    present: Callable[[Any], bool]  # does this parsed request carry any Base64 item?
    check: InlineCheck


@dataclass(frozen=True)
class ModelSpec:
    """One model: its params, its inline media, what a completed task produces, its billing and its provider."""

    name: str
    params: type[BaseModel]  # the params model (its JSON schema is the model's part of the OpenAPI document)
    parse: Callable[[Any], BaseModel]  # validate ``model_params``; raises ParamProblem naming every problem
    billing_rule: str
    prices: Mapping[str, int]  # millicredits per call, by user group
    type: str = "video"  # the public task and model ``type``
    inline: InlineMedia | None = None  # None: the model takes media by URL only
    registers_element: bool = False  # a completed task must name the element it registered
    schema: SchemaHook | None = None  # None: the params model's own JSON schema
    default_provider: str = "local"
    description: str = ""
    typical_seconds: int = 30
    groups: frozenset[str] = field(default_factory=frozenset)

    def price_for(self, group: str) -> int | None:
        """The price for a group; None means the group may not use the model."""
        if self.groups and group not in self.groups:
            return None
        return self.prices.get(group, self.prices.get("default"))

    def json_schema(self, ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The params schema for the OpenAPI document, and the components it refers to (``ref`` + name)."""
        if self.schema is not None:
            return self.schema(ref)
        schema = self.params.model_json_schema(ref_template=ref + "{model}")
        return schema, schema.pop("$defs", {})

    def public(self, group: str) -> dict[str, Any]:
        price = self.price_for(group)
        return {
            "id": self.name,
            "object": "model",
            "type": self.type,
            "description": self.description,
            "billing_rule": self.billing_rule,
            "price": None if price is None else price / 1000,
            "user_group": group,
            "available": price is not None,
        }
