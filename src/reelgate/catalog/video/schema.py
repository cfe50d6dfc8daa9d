"""A video model's part of the OpenAPI document: its whole request body (the fields sit at the top level), with the
rules validators check by hand written into the schema, a description of every field and an example request.

Everything here is derived from the params model's fields, so a model added to the catalogue is documented by the
same rules; the one rule no field carries (a prompt every request of a model needs) is listed below by model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from reelgate.catalog.video.fields import MAX_ELEMENT_ID_DIGITS, PROMPT_MAX, SHOT_PROMPT_MAX

# An http(s) URL of at most 2048 characters without spaces, control characters or backslashes (the server also
# refuses the rest of what Unicode calls unprintable: format, private-use and unassigned characters).
URL_PATTERN = r"^\s*[hH][tT][tT][pP][sS]?://[^\s\\\x00-\x1f\x7f-\x9f]+\s*$"
_URL = {"type": "string", "pattern": URL_PATTERN, "maxLength": 2048}
CALLBACK_URL: dict[str, Any] = {
    "type": ["string", "null"], "format": "uri", "pattern": "^https://[^/?#@\\s\\\\]+[^\\s\\\\]*$", "maxLength": 2048,
    "description": "An HTTPS URL that receives the task object in a POST once the task is completed or failed "
                   "(cancelled included), after its billing is settled; signed with the Standard Webhooks headers "
                   "(`webhook-id`, `webhook-timestamp`, `webhook-signature`). At most 2,048 characters; the host "
                   "may not be `localhost` or a private, loopback or reserved address. Retried 3 times (1, 2, 4 s) "
                   "after a failure. Null or absent: no callback.",
    "examples": ["https://your-domain.com/webhooks/video-task-completed"],
}  # fmt: skip
# Prompt text: line breaks and tabs are fine, other control characters and bidirectional controls are not (the
# server also counts characters as a reader sees them and refuses invisible ones, which a JSON Schema cannot say).
_BANNED = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_PROMPT_TEXT = rf"^[^{_BANNED}]*$"
_VISIBLE_PROMPT = rf"^\s*[^\s{_BANNED}][^{_BANNED}]*$"
# The models whose parser needs a prompt on every request (rules.prompt_required); the multi-shot models need one
# unless their shots carry the prompts, which is derived from their fields below.
PROMPT_ALWAYS_REQUIRED = frozenset({"kling-o3-reference-to-video"})

_ELEMENTS = (
    "Elements to use (made with kling-custom-element by the Kling provider, owned by your account), referred to in "
    "prompts as `<<<element_1>>>`, `<<<element_2>>>`, ... in list order. All of one task's elements must come from "
    "one Kling account. The model's own limits (how many, and with how many images) are checked at submit."
)
_WORDS: dict[str, str] = {
    "model": "The model's id.",
    "prompt": f"What the video shows, at most {PROMPT_MAX:,} characters (line breaks allowed). Refer to elements as "
              "`<<<element_1>>>`, `<<<element_2>>>`, ... in the order of `model_params.element_list`.",
    "negative_prompt": f"What the video should avoid, at most {PROMPT_MAX:,} characters.",
    "duration": "The video's length in seconds; the price is per second.",
    "aspect_ratio": "The video's aspect ratio.",
    "quality": "The resolution tier, priced per second (GET /v1/models lists the prices). A tier this deployment "
               "has no price for answers 400 naming `quality`.",
    "sound": "Whether the video gets generated sound (priced per tier).",
    "image_start": "The first frame: an http(s) image URL (these models take URLs, not Base64).",
    "image_end": "The last frame, an http(s) image URL; needs `image_start`.",
    "image_urls": "Reference images, http(s) URLs; they count toward the model's limit of images and elements.",
    "video_url": "The input video, an http(s) URL.",
    "video_urls": "The motion reference video: exactly one http(s) URL.",
    "keep_original_sound": "Keep the input video's sound.",
    "model_params": "The model's own options.",
    "callback_url": CALLBACK_URL["description"],
    "multi_shot": "Make several shots; needs `shot_type`.",
    "shot_type": "`customize`: you describe each shot in `multi_prompt`; `intelligence`: the model splits `prompt` "
                 "into shots.",
    "multi_prompt": "The shots, required when `shot_type` is `customize`: their durations must add up to "
                    "`duration`; `prompt` may then be left out.",
    "element_list": _ELEMENTS,
    "watermark_info": "Watermark options.",
    "character_orientation": "`image`: the character keeps the image's orientation; `video`: the motion video's "
                             "(must be `video` when `element_list` is given).",
    "keep_sound": "Keep the motion video's sound.",
    "index": "The shot's number, 1-6.",
    "element_id": "An element id: the decimal string `result_data.element_id` of a completed kling-custom-element "
                  "task.",
    "enabled": "Whether the video carries a watermark.",
}  # fmt: skip
_DEFS_WORDS = {
    "Shot": "One shot of a `customize` multi-shot video.",
    "ElementRef": "One element, by id.",
    "Watermark": "Watermark options.",
}
_SHOT_WORDS = {"prompt": f"The shot's prompt, 1-{SHOT_PROMPT_MAX} characters.",
               "duration": "The shot's length in whole seconds, 1-15, as a string."}  # fmt: skip
_SAMPLES: dict[str, Any] = {
    "image_start": "https://example.com/first-frame.jpg",
    "image_urls": ["https://example.com/reference.jpg"],
    "video_url": "https://example.com/input.mp4",
    "video_urls": ["https://example.com/dance.mp4"],
    "duration": 5,
    "quality": "720p",
    "character_orientation": "video",
}
_DEFS_EXAMPLES = {
    "Shot": {"index": 1, "prompt": "A wide shot of the harbour at dawn", "duration": "5"},
    "ElementRef": {"element_id": "829824295735410756"},
    "Watermark": {"enabled": False},
}
_WITH_ELEMENT = "<<<element_1>>> walks along a beach at sunset, the camera following"
_WITHOUT_ELEMENT = "A red fox walks through fresh snow at dawn, the camera following"


def _typed(prop: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The branch of a property (``X`` or ``X | None``) that has JSON type ``kind``."""
    nodes: list[dict[str, Any]] = [prop, *prop.get("anyOf", [])]
    return next((node for node in nodes if node.get("type") == kind), None)


def _describe(schema: dict[str, Any], words: dict[str, str] | None = None) -> None:
    for name, prop in schema.get("properties", {}).items():
        prop.pop("title", None)
        prop["description"] = (words or {}).get(name) or _WORDS[name]


def _tighten(schema: dict[str, Any]) -> None:
    """What the validators check by hand, written into the schema: prompt text and URL shapes."""
    props = schema.get("properties", {})
    for name in ("prompt", "negative_prompt"):
        node = _typed(props.get(name, {}), "string")
        if node is not None:
            node.update(maxLength=PROMPT_MAX, pattern=_PROMPT_TEXT)
    for name in ("image_start", "image_end", "video_url"):
        node = _typed(props.get(name, {}), "string")
        if node is not None:
            node.update(_URL)
    for name in ("image_urls", "video_urls"):
        node = _typed(props.get(name, {}), "array")
        if node is not None and isinstance(node.get("items"), dict):
            node["items"].update(_URL)


def _shot_rules(params: dict[str, Any]) -> list[dict[str, Any]]:
    """``multi_shot`` needs ``shot_type``; ``customize`` needs ``multi_prompt``."""
    multi = {"properties": {"multi_shot": {"const": True}}, "required": ["multi_shot"]}
    customize = {"properties": {"multi_shot": {"const": True}, "shot_type": {"const": "customize"}},
                 "required": ["multi_shot", "shot_type"]}  # fmt: skip
    return [
        {"if": multi, "then": {"required": ["shot_type"], "properties": {"shot_type": {"type": "string"}}}},
        {"if": customize, "then": {"required": ["multi_prompt"], "properties": {"multi_prompt": {"type": "array"}}}},
    ]


def _orientation_rule() -> dict[str, Any]:
    """An element needs ``character_orientation: video`` (motion control)."""
    return {"if": {"properties": {"element_list": {"type": "array", "minItems": 1}}, "required": ["element_list"]},
            "then": {"properties": {"character_orientation": {"const": "video"}}}}  # fmt: skip


def _prompt_rule(model: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """When ``prompt`` must hold visible text: always, or unless the shots are ``customize`` (they carry theirs)."""
    needed = {"required": ["prompt"], "properties": {"prompt": {"type": "string", "pattern": _VISIBLE_PROMPT}}}
    if model in PROMPT_ALWAYS_REQUIRED:
        return needed
    if "multi_shot" not in params.get("properties", {}):
        return None
    customize = {"properties": {"multi_shot": {"const": True}, "shot_type": {"const": "customize"}},
                 "required": ["multi_shot", "shot_type"]}  # fmt: skip
    return {"if": {"properties": {"model_params": customize}, "required": ["model_params"]}, "else": needed}


def _last_frame_rule(schema: dict[str, Any]) -> dict[str, Any] | None:
    """``image_end`` needs ``image_start`` where the first frame is optional."""
    props = schema["properties"]
    if "image_end" not in props or "image_start" in schema.get("required", []):
        return None
    return {"if": {"properties": {"image_end": {"type": "string"}}, "required": ["image_end"]},
            "then": {"required": ["image_start"], "properties": {"image_start": {"type": "string"}}}}  # fmt: skip


def _example(model: str, schema: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A request the model accepts: its required fields, a prompt, and an element where it takes one."""
    props, param_props = schema["properties"], params.get("properties", {})
    takes_elements = "element_list" in param_props
    example: dict[str, Any] = {"model": model}
    if "prompt" in props:
        example["prompt"] = _WITH_ELEMENT if takes_elements else _WITHOUT_ELEMENT
    for name in (*schema.get("required", []), "duration", "quality"):
        if name in props and name in _SAMPLES:
            example[name] = _SAMPLES[name]
    options = {name: _SAMPLES[name] for name in params.get("required", []) if name in _SAMPLES}
    if takes_elements:
        options["element_list"] = [copy.deepcopy(_DEFS_EXAMPLES["ElementRef"])]
    if options:
        example["model_params"] = options
    return example


@dataclass(frozen=True)
class RequestSchema:
    """The request schema hook of ``model``: its params model plus ``model`` and ``callback_url``."""

    model: str
    params: type[BaseModel]

    def __call__(self, ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
        schema = self.params.model_json_schema(ref_template=ref + "{model}")
        defs: dict[str, Any] = schema.pop("$defs", {})
        _tighten(schema)
        schema["properties"] = {"model": {"const": self.model}, **schema["properties"],
                                "callback_url": copy.deepcopy(CALLBACK_URL)}  # fmt: skip
        schema["required"] = ["model", *schema.get("required", [])]
        params_name = schema["properties"]["model_params"]["$ref"].removeprefix(ref)
        params = defs[params_name]
        self._tighten_defs(defs)
        rules = [_prompt_rule(self.model, params), _last_frame_rule(schema)]
        schema["allOf"] = [rule for rule in rules if rule is not None]
        if not schema["allOf"]:
            del schema["allOf"]
        if "multi_shot" in params["properties"]:
            params["allOf"] = _shot_rules(params)
        if "character_orientation" in params["properties"] and "element_list" in params["properties"]:
            params["allOf"] = [_orientation_rule()]
        _describe(schema)
        if self.model in PROMPT_ALWAYS_REQUIRED:
            schema["required"].append("prompt")
            schema["properties"]["prompt"]["description"] += " Required, with visible text."
        elif "multi_shot" in params["properties"]:
            schema["properties"]["prompt"]["description"] += (
                " Required, with visible text, unless `model_params.shot_type` is `customize`."
            )
        example = _example(self.model, schema, params)
        schema["examples"] = [example]
        params["description"] = f"`model_params` of {self.model}."
        params["examples"] = [example.get("model_params", {})]
        return schema, defs

    @staticmethod
    def _tighten_defs(defs: dict[str, Any]) -> None:
        for name, schema in defs.items():
            _describe(schema, _SHOT_WORDS if name == "Shot" else None)
            if name in _DEFS_WORDS:
                schema["description"] = _DEFS_WORDS[name]
                schema["examples"] = [copy.deepcopy(_DEFS_EXAMPLES[name])]
        if "Shot" in defs:
            shot = defs["Shot"]["properties"]
            shot["prompt"].update(maxLength=SHOT_PROMPT_MAX, pattern=_VISIBLE_PROMPT)
            shot["duration"].update(pattern="^\\s*0*([1-9]|1[0-5])\\s*$")
        if "ElementRef" in defs:
            defs["ElementRef"]["properties"]["element_id"].update(
                pattern=f"^\\s*[0-9]{{1,{MAX_ELEMENT_ID_DIGITS}}}\\s*$"
            )
