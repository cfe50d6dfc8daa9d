"""Pydantic models of ``model_params`` for kling-custom-element, with every problem reported by dotted path."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import ErrorDetails

MAX_URL_LENGTH = 2048
TAG_IDS = {
    "o_101": "trending",
    "o_102": "character",
    "o_103": "animal",
    "o_104": "prop",
    "o_105": "costume",
    "o_106": "scene",
    "o_107": "effect",
    "o_108": "other",
}
_DATA_URI_RE = re.compile(r"data:(image|video)/[a-zA-Z0-9.+-]+;base64,", re.IGNORECASE)
_B64_RE = re.compile(r"[A-Za-z0-9+/=_\-\s]+")


# Free text (names, descriptions, ids) is counted and checked as a reader sees it: in extended grapheme clusters
# (UAX #29, regex's \X), so a family emoji of 7 code points is one character. Refused: control characters and line
# breaks; bidirectional embeddings, overrides and isolates (they reorder what a reader sees); every other format
# character but the zero-width joiner and non-joiner (emoji and several scripts need them) and the tag characters
# of an emoji flag (anywhere else they carry hidden ASCII); and text with nothing visible left.
_GRAPHEME = regex.compile(r"\X")
_CONTROL = regex.compile(r"[\p{Cc}\p{Zl}\p{Zp}]")
_BIDI = regex.compile(r"[\u202A-\u202E\u2066-\u2069]")
_FORMAT = regex.compile(r"[\p{Cf}--[\u200C\u200D\U000E0020-\U000E007F]]", regex.V1)
_FLAG_TAGS = regex.compile(r"\U0001F3F4[\U000E0020-\U000E007E]+\U000E007F")
_TAG = regex.compile(r"[\U000E0020-\U000E007F]")
_INVISIBLE = regex.compile(r"[\p{White_Space}\p{Default_Ignorable_Code_Point}\u2800]+")
CODE_POINTS_PER_CHARACTER = 10  # bounds a "character" of stacked combining marks: 20 of them is not 20 MB


def _hidden(value: str) -> str | None:
    for pattern, what in ((_CONTROL, "control characters or line breaks"),
                          (_BIDI, "bidirectional override, embedding or isolate characters"),
                          (_FORMAT, "invisible format characters")):  # fmt: skip
        found = pattern.search(value)
        if found is not None:
            return f"must not contain {what} (found U+{ord(found.group()):04X})"
    stray = _TAG.search(_FLAG_TAGS.sub("", value))
    if stray is not None:
        return f"must not contain tag characters outside an emoji flag (found U+{ord(stray.group()):04X})"
    return None


def free_text(value: str, limit: int, info: ValidationInfo) -> str:
    """Trimmed ``value`` if it is 1..``limit`` characters a person can see; ValueError naming the rule if not."""
    value = value.strip()
    if info.context == INTERNAL:
        return value  # stored params passed these rules when submitted; rules added later must not strand them
    if len(value) > limit * CODE_POINTS_PER_CHARACTER:
        raise ValueError(f"must be 1-{limit} characters (and at most {limit * CODE_POINTS_PER_CHARACTER} code points)")
    if value.isascii() and value.isprintable():
        # Printable ASCII (nearly every request) has no hidden or format characters and one character per code
        # point: the Unicode rules below cost 25 us a submit, 10% of the submit route's CPU.
        if not 1 <= len(value) <= limit:
            raise ValueError(f"must be 1-{limit} characters")
        return value
    problem = _hidden(value)
    if problem is not None:
        raise ValueError(problem)
    if value and not _INVISIBLE.sub("", value):
        raise ValueError("must contain a visible character, not only spaces or invisible characters")
    if not 1 <= len(_GRAPHEME.findall(value)) <= limit:
        raise ValueError(f"must be 1-{limit} characters")
    return value


def is_url(value: str) -> bool:
    return value[:8].lower().startswith(("http://", "https://"))


INTERNAL = {"internal": True}  # validation context of params already stored: allows asset:<name> references


def _media_source(value: str, kind: Literal["image", "video"], info: ValidationInfo) -> str:
    """A media item is an http(s) URL (≤ 2048 chars), a data URI, or bare Base64."""
    value = value.strip()
    if info.context == INTERNAL and value.startswith("asset:"):
        return value
    if not value:
        raise ValueError("must not be empty")
    if is_url(value):
        if len(value) > MAX_URL_LENGTH:
            raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
        # The fetch refuses these too (netguard), but only once a task holds the caller's credits: say so at submit.
        # str.isprintable() is False for every whitespace character but the ASCII space, and runs in C.
        if info.context != INTERNAL and (not value.isprintable() or " " in value or "\\" in value):
            raise ValueError("must not contain spaces, control characters or backslashes")
        return value
    match = _DATA_URI_RE.match(value)
    if value[:5].lower() == "data:" and (match is None or match.group(1).lower() != kind):
        raise ValueError(f"a data URI must look like data:{kind}/<type>;base64,<data>")
    payload = value[match.end() :] if match else value
    if kind == "video" and match is None:
        raise ValueError("must be an http(s) URL or a data:video/...;base64, URI")
    if not _B64_RE.fullmatch(payload):
        raise ValueError("must be an http(s) URL or Base64 image data")
    try:
        base64.b64decode("".join(payload.split()) + "==", validate=False)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid Base64") from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class ReferImage(_Strict):
    image_url: str

    @field_validator("image_url")
    @classmethod
    def _image(cls, v: str, info: ValidationInfo) -> str:
        return _media_source(v, "image", info)


class ImageList(_Strict):
    frontal_image: str
    refer_images: Annotated[list[ReferImage], Field(min_length=1, max_length=3)]

    @field_validator("frontal_image")
    @classmethod
    def _frontal(cls, v: str, info: ValidationInfo) -> str:
        return _media_source(v, "image", info)


class ReferVideo(_Strict):
    video_url: str

    @field_validator("video_url")
    @classmethod
    def _video(cls, v: str, info: ValidationInfo) -> str:
        return _media_source(v, "video", info)


class VideoList(_Strict):
    refer_videos: Annotated[list[ReferVideo], Field(min_length=1, max_length=1)]

    @model_validator(mode="before")
    @classmethod
    def _flat_form(cls, data: Any) -> Any:
        # The vendor documents both {"refer_videos": [{"video_url": ...}]} and the flat {"video_url": ...}.
        if isinstance(data, dict) and "refer_videos" not in data and "video_url" in data:
            return {"refer_videos": [{"video_url": data["video_url"]}]}
        return data


class Tag(_Strict):
    tag_id: Literal["o_101", "o_102", "o_103", "o_104", "o_105", "o_106", "o_107", "o_108"]


class CustomElementParams(_Strict):
    element_name: str
    element_description: str
    reference_type: Literal["image_refer", "video_refer"]
    element_image_list: ImageList | None = None
    element_video_list: VideoList | None = None
    element_voice_id: str | None = None
    tag_list: list[Tag] | None = None

    @field_validator("element_name")
    @classmethod
    def _name(cls, v: str, info: ValidationInfo) -> str:
        return free_text(v, 20, info)

    @field_validator("element_description")
    @classmethod
    def _description(cls, v: str, info: ValidationInfo) -> str:
        return free_text(v, 100, info)

    @field_validator("element_voice_id")
    @classmethod
    def _voice(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else free_text(v, 64, info)

    @field_validator("tag_list")
    @classmethod
    def _tags(cls, v: list[Tag] | None) -> list[Tag] | None:
        if v is not None and len({t.tag_id for t in v}) != len(v):
            raise ValueError("must not repeat a tag_id")
        return v


class ParamProblem(ValueError):
    """All problems of one ``model_params``; each is ``(dotted path, sentence)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems[0][1])
        self.problems = problems


def _cross_rules(raw: dict[str, Any]) -> list[tuple[str, str]]:
    kind = raw.get("reference_type")
    images, videos = raw.get("element_image_list"), raw.get("element_video_list")
    problems: list[tuple[str, str]] = []
    if kind == "image_refer":
        if images is None:
            problems.append(("model_params.element_image_list", "is required when reference_type is image_refer"))
        if videos is not None:
            problems.append(("model_params.element_video_list", "is not allowed when reference_type is image_refer"))
    elif kind == "video_refer":
        if videos is None:
            problems.append(("model_params.element_video_list", "is required when reference_type is video_refer"))
        if images is not None:
            problems.append(("model_params.element_image_list", "is not allowed when reference_type is video_refer"))
    return problems


def dotted(loc: tuple[int | str, ...], root: str = "model_params") -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _sentence(err: ErrorDetails) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind in ("string_type", "dict_type", "list_type", "model_type", "model_attributes_type"):
        want = {"string_type": "a string", "list_type": "an array"}.get(kind, "an object")
        return f"must be {want}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}".replace("'", "")
    if kind in ("too_short", "too_long") and "refer_images" in str(err["loc"]):
        return "must have 1-3 items"
    if kind in ("too_short", "too_long") and "refer_videos" in str(err["loc"]):
        return "must have exactly one item"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"]).lower()


def parse_custom_element(raw: Any) -> CustomElementParams:
    """Validate ``model_params``; raise ParamProblem listing every problem with its dotted path."""
    if not isinstance(raw, dict):
        raise ParamProblem([("model_params", "model_params must be an object")])
    problems: list[tuple[str, str]] = []
    try:
        parsed = CustomElementParams.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if p not in ("function-after[_flat_form(), VideoList]",))
            path = dotted(loc)
            problems.append((path, f"{path} {_sentence(err)}"))
        parsed = None
    problems.extend((path, f"{path} {rule}") for path, rule in _cross_rules(raw))
    if problems or parsed is None:
        raise ParamProblem(problems)
    return parsed


def media_items(params: CustomElementParams) -> list[tuple[str, str, Literal["image", "video"]]]:
    """Every media item as (dotted field, source, kind), frontal image first."""
    items: list[tuple[str, str, Literal["image", "video"]]] = []
    if params.element_image_list is not None:
        base = "model_params.element_image_list"
        items.append((f"{base}.frontal_image", params.element_image_list.frontal_image, "image"))
        for i, ref in enumerate(params.element_image_list.refer_images):
            items.append((f"{base}.refer_images[{i}].image_url", ref.image_url, "image"))
    if params.element_video_list is not None:
        video = params.element_video_list.refer_videos[0].video_url
        items.append(("model_params.element_video_list.refer_videos[0].video_url", video, "video"))
    return items
