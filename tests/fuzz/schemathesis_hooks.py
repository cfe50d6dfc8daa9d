"""Schemathesis extensions for tests/fuzz (loaded with SCHEMATHESIS_HOOKS): ``schema_valid_request_accepted``,
schemathesis' ``positive_data_acceptance`` narrowed to the rules a JSON Schema cannot state, and
``invalid_request_refused``, its ``negative_data_rejection`` without one false alarm on multipart bodies.

A request the document calls valid must be accepted, with the exceptions below and no others: each is a 400 that
names its field and its code, for a rule that depends on the server's state, on the media's content or on text
as a reader sees it. Anything else the server refuses while the document admits it is a mismatch to fix.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import schemathesis
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.specs.openapi.checks import is_unexpected_http_status_case, negative_data_rejection

# (field, codes, why the document cannot say it)
_PROMPTS = r"(prompt|negative_prompt|model_params\.multi_prompt\[\d+\]\.prompt)"
_TEXT = r"model_params\.(element_name|element_description|element_voice_id)"
UNSTATABLE: list[tuple[str, set[str], str]] = [
    (r"model_params\.element_list(\[\d+\]\.element_id)?", {"invalid_parameter"},
     "an element must exist in the caller's account and come from a Kling channel; images and elements together "
     "have per-model limits"),
    (r"image_end", {"invalid_parameter"}, "a last frame allows at most 2 images in all (a sum over fields)"),
    (r"model_params\.multi_prompt", {"invalid_parameter"}, "the shots' durations must add up to duration"),
    (_PROMPTS, {"invalid_parameter"}, "a <<<element_N>>> must name an item of element_list; characters are counted "
     "and checked as a reader sees them (graphemes, invisible characters)"),
    (_TEXT, {"invalid_parameter"}, "characters are counted and checked as a reader sees them"),
    (r"callback_url", {"invalid_callback_url"}, "the host must be public (IP literals in every spelling, names IDNA "
     "and httpx accept)"),
    (r"model_params\.element_(image|video)_list\..+", {"image_processing_error", "invalid_parameters"},
     "Base64 media must decode to a JPEG/PNG (or MP4/MOV) that meets the size and dimension rules"),
    (r"(image_start|image_end|video_url|(image|video)_urls\[\d+\]|model_params\.element_(image|video)_list\..+)",
     {"invalid_parameter"}, "a URL's characters must be printable as Unicode says (no format, private-use or "
     "unassigned characters)"),
    (r"(file|base64_data)", {"unsupported_file_type", "invalid_parameter"}, "an upload's bytes must be a JPEG, PNG, "
     "GIF or WebP image by content (and Base64 must decode)"),
    (r"", {"invalid_multipart"}, "a form field may have 4096 bytes, and a JSON Schema counts characters (4096 of "
     "them, the document's bound, can be more bytes)"),
    (r"quality", {"invalid_parameter"}, "a quality tier is offered only once this deployment has a price for it"),
    (r"(duration|model_params\.multi_prompt\[\d+\]\.index)", {"invalid_parameter"}, "JSON Schema's integer "
     "admits 5.0, which the server refuses as the vendor's integer fields do (whole numbers are stated, not their "
     "spelling)"),
]  # fmt: skip
# What positive_data_acceptance itself allows besides 2xx: rights and state the schema does not promise.
_ALLOWED = {401, 403, 404, 409, 429}


def _unstatable(param: str, code: str) -> bool:
    return any(re.fullmatch(field, param) and code in codes for field, codes, _ in UNSTATABLE)


@schemathesis.check
def schema_valid_request_accepted(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                                  case: schemathesis.Case) -> bool | None:  # fmt: skip
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or is_unexpected_http_status_case(case):
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in _ALLOWED:
        return None
    error = {}
    if status == 400:
        try:
            error = json.loads(response.content)["error"]
        except (ValueError, KeyError, TypeError):
            error = {}
        if _unstatable(str(error.get("param", "")), str(error.get("code", ""))):
            return None
    raise AssertionError(f"a request valid by the document was refused with {status} {error.get('code')} "
                         f"({error.get('param')}): {error.get('message')}")  # fmt: skip


def _multipart_valid_as_sent(case: schemathesis.Case) -> bool:
    """Whether a multipart body schemathesis generated as invalid is valid by the document once sent, where every
    field is text: its negation of an ``if``/``else`` rule (a camelCase spelling read only when the other is absent)
    can yield a body the document accepts, and its own re-reading of the sent form gives up on the file part."""
    if case.media_type != "multipart/form-data" or not isinstance(case.body, dict) or case.query:
        return False
    document = case.operation.schema.raw_schema
    schema = case.operation.definition.raw["requestBody"]["content"]["multipart/form-data"]["schema"]
    sent = {name: value if isinstance(value, str) else "<file>" if isinstance(value, bytes) else json.dumps(value)
            for name, value in case.body.items()}  # fmt: skip
    registry: Registry[Any] = Registry().with_resource("urn:doc", Resource.from_contents(document, DRAFT202012))
    ref = schema["$ref"].replace("#/", "urn:doc#/", 1) if "$ref" in schema else None
    validator = jsonschema.Draft202012Validator({"$ref": ref} if ref else schema, registry=registry)
    return bool(validator.is_valid(sent))


@schemathesis.check
def invalid_request_refused(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                            case: schemathesis.Case) -> bool | None:  # fmt: skip
    """schemathesis' negative_data_rejection, except for a multipart body the document accepts as it was sent."""
    try:
        return negative_data_rejection(ctx, response, case)
    except AssertionError:
        if _multipart_valid_as_sent(case):
            return None
        raise
