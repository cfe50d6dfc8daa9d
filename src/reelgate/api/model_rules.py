"""Each model's request rules for ``GET /v1/models``: its request schema (the one /openapi.json holds, made
self-contained) and every field flattened with its rules, so a client needs no OpenAPI tooling to read them."""

from __future__ import annotations

from typing import Any

from reelgate.api.openapi import model_request
from reelgate.catalog import ModelSpec

_DEFS = "#/$defs/"
# JSON Schema keywords a field's rule is stated with, and their names in the API's snake_case.
_RULES = {
    "enum": "enum", "const": "const", "default": "default", "minimum": "minimum", "maximum": "maximum",
    "minLength": "min_length", "maxLength": "max_length", "pattern": "pattern", "format": "format",
    "minItems": "min_items", "maxItems": "max_items", "uniqueItems": "unique_items",
}  # fmt: skip


def model_rules(spec: ModelSpec) -> dict[str, Any]:
    """``request_schema`` (JSON Schema 2020-12, its components under ``$defs``) and ``fields``."""
    body, defs = model_request(spec, _DEFS)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **body, "$defs": defs}
    return {"request_schema": schema, "fields": fields(schema, defs)}


def _resolved(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The node, through a ``$ref`` and past the ``null`` branch of an optional field (``X | None``)."""
    branches = [b for b in node.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        node = {**branches[0], **{k: v for k, v in node.items() if k != "anyOf"}}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS):
        node = {**defs[ref.removeprefix(_DEFS)], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _type(node: dict[str, Any]) -> str:
    if "type" in node:
        return str(node["type"])
    values = node.get("enum", [node["const"]] if "const" in node else [])
    kinds = {type(v).__name__ for v in values}
    return {"str": "string", "bool": "boolean", "int": "integer", "float": "number"}.get(kinds.pop(), "any") \
        if len(kinds) == 1 else "any"  # fmt: skip


def fields(schema: dict[str, Any], defs: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """Every property of ``schema``, depth first, with its type, whether it is required and its rules."""
    out: list[dict[str, Any]] = []
    required = set(schema.get("required", []))
    for name, raw in schema.get("properties", {}).items():
        node = _resolved(raw, defs)
        path = prefix + name
        field: dict[str, Any] = {"field": path, "type": _type(node), "required": name in required}
        items = _resolved(node["items"], defs) if isinstance(node.get("items"), dict) else None
        field.update({ours: node[key] for key, ours in _RULES.items() if key in node})
        if items is not None and "properties" not in items:
            field["items"] = {ours: items[key] for key, ours in {"type": "type", **_RULES}.items() if key in items}
        if node.get("description"):
            field["description"] = node["description"]
        out.append(field)
        if "properties" in node:
            out.extend(fields(node, defs, path + "."))
        elif items is not None and "properties" in items:
            out.extend(fields(items, defs, path + "[]."))
    return out
