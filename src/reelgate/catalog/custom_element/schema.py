"""kling-custom-element's part of the OpenAPI document: its params schema with the rules validators check by hand,
a description of every field and the vendor page's own example."""

from __future__ import annotations

import copy
from typing import Any

from reelgate.catalog.custom_element.params import TAG_IDS, CustomElementParams

# An http(s) URL of at most 2048 characters, or Base64 (a data URI of the right kind, or bare for images).
_URL = r"[hH][tT][tT][pP][sS]?://[^\s\\\x00-\x1f\x7f-\x9f]{1,2040}"  # no spaces, controls or backslashes
_IMAGE = rf"^\s*({_URL}|data:image/[a-zA-Z0-9.+-]+;base64,[A-Za-z0-9+/=]+|[A-Za-z0-9+/=]+)\s*$"
_VIDEO = rf"^\s*({_URL}|data:video/[a-zA-Z0-9.+-]+;base64,[A-Za-z0-9+/=]+)\s*$"
_TEXT = {"element_name": 20, "element_description": 100, "element_voice_id": 64}
# Visible text, trimmed as the server trims it: no control, line-break or bidirectional control characters (the
# server also counts characters as a reader sees them and refuses invisible ones, which a JSON Schema cannot say).
_BANNED = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_VISIBLE = rf"[^\s{_BANNED}]"
FREE_TEXT = rf"^\s*{_VISIBLE}([^{_BANNED}]*{_VISIBLE})?\s*$"

_IMAGE_RULES = (
    "An http(s) URL of at most 2048 characters, or Base64 image data (a `data:image/...;base64,` URI or a bare "
    "Base64 string; an extension: EvoLink takes URLs only). JPEG or PNG by content, at most 10 MB, width and "
    "height at least 300 px, aspect ratio between 1:2.5 and 2.5:1. Base64 that breaks a rule answers 400 at "
    "submit; a URL is read by the task, which fails with `image_processing_error` (credits refunded)."
)
_VIDEO_RULES = (
    "An http(s) URL of at most 2048 characters (or a `data:video/...;base64,` URI). MP4 or MOV by content, at "
    "most 200 MB, 3-8 s long, width and height each 720-2160 px, aspect ratio between 1:2.5 and 2.5:1. A video "
    "that breaks a rule fails the task with `invalid_parameters` (credits refunded)."
)
_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "CustomElementParams": {
        "": "`model_params` of kling-custom-element: what the element is and the media it is made from.",
        "element_name": "The element's name: 1-20 characters as a reader counts them (a CJK character or an emoji "
                        "is one), trimmed; no control or invisible characters.",
        "element_description": "What the element is: 1-100 characters, trimmed; no control or invisible characters.",
        "reference_type": "`image_refer`: made from a frontal image and 1-3 reference images (`element_image_list`). "
                          "`video_refer`: made from one reference video (`element_video_list`).",
        "element_image_list": "The images, required when `reference_type` is `image_refer` and not allowed with "
                              "`video_refer`.",
        "element_video_list": "The reference video, required when `reference_type` is `video_refer` and not allowed "
                              "with `image_refer`.",
        "element_voice_id": "A Kling voice id for the element, at most 64 characters; `video_refer` only (400 with "
                            "`image_refer`).",
        "tag_list": "Optional tags, no tag repeated: " + ", ".join(f"`{k}` {v}" for k, v in TAG_IDS.items()) +
                    " (an extension: EvoLink's document has no tags).",
    },
    "ImageList": {
        "": "A frontal image and 1-3 reference images of the same subject.",
        "frontal_image": "The subject seen from the front. " + _IMAGE_RULES,
        "refer_images": "1-3 more images of the subject (other angles, poses), each visibly different from the "
                        "frontal image (a near-duplicate is refused).",
    },
    "ReferImage": {"": "One reference image.", "image_url": _IMAGE_RULES},
    "VideoList": {
        "": "The reference video: `{\"refer_videos\": [{\"video_url\": URL}]}` with exactly one item. The older flat "
            "form `{\"video_url\": URL}` is accepted as an alias.",
        "refer_videos": "Exactly one reference video.",
        "video_url": "The flat form's video (an alias of `refer_videos[0].video_url`). " + _VIDEO_RULES,
    },
    "ReferVideo": {"": "One reference video.", "video_url": _VIDEO_RULES},
    "Tag": {"": "One tag.", "tag_id": "The tag's id."},
}  # fmt: skip

# The vendor page's own example (seed/kling-custom-element-api.txt): a client written for EvoLink sends this.
SEED_EXAMPLE: dict[str, Any] = {
    "element_name": "My Character",
    "element_description": "A young male character with short hair, wearing a white T-shirt",
    "reference_type": "image_refer",
    "element_image_list": {
        "frontal_image": "https://example.com/front.jpg",
        "refer_images": [{"image_url": "https://example.com/side.jpg"}],
    },
}
VIDEO_EXAMPLE: dict[str, Any] = {
    "element_name": "Presenter",
    "element_description": "A presenter in a blue jacket, filmed turning to face the camera",
    "reference_type": "video_refer",
    "element_video_list": {"refer_videos": [{"video_url": "https://example.com/presenter.mp4"}]},
    "element_voice_id": "829824295735410756",
    "tag_list": [{"tag_id": "o_102"}],
}
_EXAMPLES = {
    "ImageList": SEED_EXAMPLE["element_image_list"],
    "ReferImage": {"image_url": "https://example.com/side.jpg"},
    "VideoList": VIDEO_EXAMPLE["element_video_list"],
    "ReferVideo": {"video_url": "https://example.com/presenter.mp4"},
    "Tag": {"tag_id": "o_102"},
}


def _describe(name: str, schema: dict[str, Any]) -> None:
    words = _DESCRIPTIONS[name]
    schema["description"] = words[""]
    for field, prop in schema["properties"].items():
        prop.pop("title", None)
        prop["description"] = words[field]


def _alias_video_list(video_list: dict[str, Any]) -> None:
    """``element_video_list`` is ``{refer_videos: [one]}`` or the flat ``{video_url}``: both, one at a time."""
    video_list["properties"]["video_url"] = {"type": "string", "pattern": _VIDEO}
    video_list.pop("required")
    video_list["oneOf"] = [
        {"required": ["refer_videos"]},
        {"required": ["video_url"], "not": {"required": ["refer_videos"]}},
    ]


def _switch() -> list[dict[str, Any]]:
    """The type switch: which list each ``reference_type`` needs, and what it refuses."""
    needs = {"image_refer": ("element_image_list", ("element_video_list", "element_voice_id")),
             "video_refer": ("element_video_list", ("element_image_list",))}  # fmt: skip
    return [
        {"if": {"properties": {"reference_type": {"const": kind}}, "required": ["reference_type"]},
         "then": {"required": [needed], "properties": {needed: {"type": "object"},
                                                      **{name: {"type": "null"} for name in banned}}}}
        for kind, (needed, banned) in needs.items()
    ]  # fmt: skip


def json_schema(ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pydantic schema, plus what the validators check by hand: lengths, media shapes, the type switch."""
    params = CustomElementParams.model_json_schema(ref_template=ref + "{model}")
    defs: dict[str, Any] = params.pop("$defs", {})
    props = params["properties"]
    for name, longest in _TEXT.items():
        text = props[name] if "type" in props[name] else props[name]["anyOf"][0]
        text.update(minLength=1, maxLength=longest, pattern=FREE_TEXT)
    defs["ImageList"]["properties"]["frontal_image"].update(pattern=_IMAGE)
    defs["ReferImage"]["properties"]["image_url"].update(pattern=_IMAGE)
    defs["ReferVideo"]["properties"]["video_url"].update(pattern=_VIDEO)
    # No tag_id twice (uniqueItems would compare whole items, and unknown fields beside tag_id are ignored).
    props["tag_list"]["anyOf"][0]["allOf"] = [
        {"contains": {"properties": {"tag_id": {"const": tag}}, "required": ["tag_id"]}, "minContains": 0,
         "maxContains": 1} for tag in TAG_IDS
    ]  # fmt: skip
    _alias_video_list(defs["VideoList"])
    params["allOf"] = _switch()
    _describe("CustomElementParams", params)
    for name, schema in defs.items():
        _describe(name, schema)
        schema["examples"] = [copy.deepcopy(_EXAMPLES[name])]
    params["examples"] = [copy.deepcopy(SEED_EXAMPLE), copy.deepcopy(VIDEO_EXAMPLE)]
    return params, defs
