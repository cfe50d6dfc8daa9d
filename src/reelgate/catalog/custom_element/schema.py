"""kling-custom-element's part of the OpenAPI document: its params schema with the rules validators check by hand."""

from __future__ import annotations

from typing import Any

from reelgate.catalog.custom_element.params import CustomElementParams

_MEDIA = r"^(https?://\S{1,2040}|data:image/[a-zA-Z0-9.+-]+;base64,[A-Za-z0-9+/=]+|[A-Za-z0-9+/=]+)$"
_TEXT = {"element_name": 20, "element_description": 100}


def json_schema(ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pydantic schema, plus what the validators check by hand: lengths, media shapes, the type switch."""
    params = CustomElementParams.model_json_schema(ref_template=ref + "{model}")
    defs = params.pop("$defs", {})
    for name, longest in _TEXT.items():
        params["properties"][name].update(minLength=1, maxLength=longest, pattern=r"^\S(.*\S)?$")
    defs["ImageList"]["properties"]["frontal_image"].update(pattern=_MEDIA)
    defs["ReferImage"]["properties"]["image_url"].update(pattern=_MEDIA)
    params["properties"]["tag_list"]["anyOf"][0]["uniqueItems"] = True
    switch = [("image_refer", "element_image_list", "element_video_list"),
              ("video_refer", "element_video_list", "element_image_list")]  # fmt: skip
    params["allOf"] = [
        {"if": {"properties": {"reference_type": {"const": kind}}, "required": ["reference_type"]},
         "then": {"required": [needed], "properties": {needed: {"type": "object"}, banned: {"type": "null"}}}}
        for kind, needed, banned in switch
    ]  # fmt: skip
    return params, defs
