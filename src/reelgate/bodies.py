"""Request bodies as JSON objects: the rules every route applies, shared with the media pool's processes."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from reelgate.errors import InvalidRequest

MAX_JSON_DEPTH = 32


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > limit:
            return level
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)
    return deepest


def json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object; InvalidRequest when it is not JSON, not an object, or nested too deep."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    # Nesting needs an opening bracket per level: a body with few of them (every real one) skips the walk.
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH and _depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise InvalidRequest(f"request body is nested deeper than {MAX_JSON_DEPTH} levels", code="invalid_json")
    return body


def body_hash(body: dict[str, Any]) -> str:
    """What an Idempotency-Key remembers of a body: the same JSON, whatever its key order or spacing."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
