"""A video model's part of the OpenAPI document: its whole request body (the fields sit at the top level)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from reelgate.catalog.video.fields import PROMPT_MAX, SHOT_PROMPT_MAX

_URL = {"type": "string", "pattern": "^https?://", "maxLength": 2048}
_CALLBACK = {"type": "string", "pattern": "^https://[^/?#@\\s]+", "maxLength": 2048}


def _typed(prop: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The branch of a property (``X`` or ``X | None``) that has JSON type ``kind``."""
    nodes: list[dict[str, Any]] = [prop, *prop.get("anyOf", [])]
    return next((node for node in nodes if node.get("type") == kind), None)


def _tighten(schema: dict[str, Any]) -> None:
    """What the validators check by hand, written into the schema: prompt lengths and URL shapes."""
    props = schema.get("properties", {})
    for name, extra in (("prompt", {"maxLength": PROMPT_MAX}), ("negative_prompt", {"maxLength": PROMPT_MAX}),
                        ("image_start", _URL), ("image_end", _URL), ("video_url", _URL)):  # fmt: skip
        node = _typed(props.get(name, {}), "string")
        if node is not None:
            node.update(extra)
    for name in ("image_urls", "video_urls"):
        node = _typed(props.get(name, {}), "array")
        if node is not None and isinstance(node.get("items"), dict):
            node["items"].update(_URL)


@dataclass(frozen=True)
class RequestSchema:
    """The request schema hook of ``model``: its params model plus ``model`` and ``callback_url``."""

    model: str
    params: type[BaseModel]

    def __call__(self, ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
        schema = self.params.model_json_schema(ref_template=ref + "{model}")
        defs: dict[str, Any] = schema.pop("$defs", {})
        _tighten(schema)
        if "Shot" in defs:
            defs["Shot"]["properties"]["prompt"].update(minLength=1, maxLength=SHOT_PROMPT_MAX)
            defs["Shot"]["properties"]["duration"].update(pattern="^[0-9]{1,2}$")
        if "ElementRef" in defs:
            defs["ElementRef"]["properties"]["element_id"].update(pattern="^[0-9]{1,20}$")
        schema["properties"] = {"model": {"const": self.model}, **schema["properties"], "callback_url": _CALLBACK}
        schema["required"] = ["model", *schema.get("required", [])]
        return schema, defs
