"""A model as data: how its request is parsed, which Base64 media it takes, what it produces, costs and who serves it.

Nothing here knows a particular model: each model's folder (catalog/<model>/) fills a ModelSpec with its own
functions, and the service, the worker and the API ask only these fields. Every hook is a module-level function or
an instance of a module-level class: the spec travels pickled to the media pool's processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pydantic import BaseModel

from reelgate.config import ConfigError, PriceOverride
from reelgate.domain import format_credits
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
class ElementInfo:
    """An element a request names, as the caller's element row says (the catalog sees no store rows)."""

    id: str
    provider: str
    upstream_id: str | None
    data: Mapping[str, Any]  # the element's public result_data (reference_type, ...)


class UsesElements(Protocol):
    """A model whose requests name elements (``model_params.element_list``): which, and the rules they must meet."""

    def ids(self, params: BaseModel) -> list[str]:
        """The element ids the parsed request names, in list order."""

    def check(self, params: BaseModel, found: Mapping[str, ElementInfo]) -> dict[str, Any]:
        """``found`` holds the caller's own elements among ``ids``; raise ParamProblem naming every broken rule,
        else return what the task's params gain (e.g. ``{"upstream": {"channel": ...}}``)."""


@dataclass(frozen=True)
class Charge:
    """What a submit reserves: millicredits, and the billing facts stored as ``params["billing"]`` (or None)."""

    millicredits: int
    billing: dict[str, Any] | None = None


class Pricing(Protocol):
    """Prices that depend on the request (per_second: quality, sound and seconds), by user group."""

    def charge(self, params: BaseModel, group: str) -> Charge:
        """The reservation for these params; raise ParamProblem naming ``quality``/``sound`` for an unpriced tier."""

    def cheapest(self, group: str) -> int | None:
        """The lowest unit price the group has (millicredits), None when it has none."""

    def listing(self, group: str) -> list[dict[str, Any]]:
        """Every price the group has, for GET /v1/models."""

    def overridden(self, model: str, rows: Sequence[PriceOverride]) -> Pricing:
        """These prices with the operator's rows for this model applied; ConfigError for a row naming no tier."""


@dataclass(frozen=True)
class ModelSpec:
    """One model: its params, its inline media, what a completed task produces, its billing and its provider."""

    name: str
    params: type[BaseModel]  # the params model (its JSON schema is the model's part of the OpenAPI document)
    parse: Callable[[Any], BaseModel]  # validate the request; raises ParamProblem naming every problem
    billing_rule: str
    prices: Mapping[str, int]  # millicredits per call, by user group (per_call models)
    type: str = "video"  # the public task and model ``type``
    inline: InlineMedia | None = None  # None: the model takes media by URL only
    registers_element: bool = False  # a completed task must name the element it registered
    schema: SchemaHook | None = None  # None: the params model's own JSON schema
    default_provider: str = "local"
    description: str = ""
    typical_seconds: int = 30
    groups: frozenset[str] = field(default_factory=frozenset)
    reads_body: bool = False  # parse gets the whole request body; False: ``model_params`` only
    elements: UsesElements | None = None  # None: the model names no elements
    pricing: Pricing | None = None  # None: ``prices`` per call

    def allows(self, group: str) -> bool:
        return not self.groups or group in self.groups

    def price_for(self, group: str) -> int | None:
        """The price per call (per-params models: their lowest unit price); None: the group may not use the model."""
        if not self.allows(group):
            return None
        if self.pricing is not None:
            return self.pricing.cheapest(group)
        return self.prices.get(group, self.prices.get("default"))

    def charge(self, params: BaseModel, group: str) -> Charge | None:
        """What a task with these params reserves; None: the group may not use the model. Raises ParamProblem
        for a tier without a price."""
        if self.pricing is not None:
            return self.pricing.charge(params, group) if self.allows(group) else None
        price = self.price_for(group)
        return None if price is None else Charge(price)

    def price_list(self, group: str) -> list[dict[str, Any]]:
        if self.pricing is not None:
            return self.pricing.listing(group) if self.allows(group) else []
        price = self.price_for(group)
        return [] if price is None else [{"user_group": group, "unit": "call", "price": format_credits(price)}]

    def priced(self, rows: Sequence[PriceOverride]) -> ModelSpec:
        """This model with the operator's price rows (REELGATE_PRICES) for it applied."""
        mine = [r for r in rows if r.model == self.name]
        if not mine:
            return self
        if self.pricing is not None:
            return replace(self, pricing=self.pricing.overridden(self.name, mine))
        for row in mine:
            if row.quality is not None or row.sound is not None:
                raise ConfigError(f"REELGATE_PRICES: {self.name} is priced per call; its rows take no quality/sound")
        return replace(self, prices={**self.prices, **{r.group: r.millicredits for r in mine}})

    def json_schema(self, ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The params schema for the OpenAPI document, and the components it refers to (``ref`` + name)."""
        if self.schema is not None:
            return self.schema(ref)
        schema = self.params.model_json_schema(ref_template=ref + "{model}")
        return schema, schema.pop("$defs", {})

    def public(self, group: str, *, served: bool = True) -> dict[str, Any]:
        """The model in GET /v1/models; ``served`` False: no provider of this deployment can run it."""
        price = self.price_for(group)
        return {
            "id": self.name,
            "object": "model",
            "type": self.type,
            "description": self.description,
            "billing_rule": self.billing_rule,
            "price": None if price is None else price / 1000,
            "user_group": group,
            "available": price is not None and served,
            "prices": self.price_list(group),
        }
