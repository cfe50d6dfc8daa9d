"""Pydantic models of ``model_params`` for kling-custom-element, with every problem reported by dotted path."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import ErrorDetails

from reelgate.params import Missing, ParamProblem, dotted, free_text, media_source, problem_of, sentence

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class ReferImage(_Strict):
    image_url: str

    @field_validator("image_url")
    @classmethod
    def _image(cls, v: str, info: ValidationInfo) -> str:
        return media_source(v, "image", info)


class ImageList(_Strict):
    frontal_image: str
    refer_images: Annotated[list[ReferImage], Field(min_length=1, max_length=3)]

    @field_validator("frontal_image")
    @classmethod
    def _frontal(cls, v: str, info: ValidationInfo) -> str:
        return media_source(v, "image", info)


class ReferVideo(_Strict):
    video_url: str

    @field_validator("video_url")
    @classmethod
    def _video(cls, v: str, info: ValidationInfo) -> str:
        return media_source(v, "video", info)


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


def _required(path: str, kind: str) -> Missing:
    return Missing(path, f"{path} is required when reference_type is {kind}")


def _not_allowed(path: str, kind: str, why: str = "") -> tuple[str, str]:
    return path, f"{path} is not allowed when reference_type is {kind}{why}"


def _cross_rules(raw: dict[str, Any]) -> list[tuple[str, str]]:
    kind = raw.get("reference_type")
    images, videos = raw.get("element_image_list"), raw.get("element_video_list")
    image_list, video_list = "model_params.element_image_list", "model_params.element_video_list"
    problems: list[tuple[str, str]] = []
    if kind == "image_refer":
        if images is None:
            problems.append(_required(image_list, kind))
        if videos is not None:
            problems.append(_not_allowed(video_list, kind))
        if raw.get("element_voice_id") is not None:
            # EvoLink's document: "only supported when reference_type = video_refer, not available for image_refer";
            # accepting it here would store a voice the element would never speak with.
            problems.append(_not_allowed("model_params.element_voice_id", kind,
                                         " (a voice applies to video_refer elements only)"))  # fmt: skip
    elif kind == "video_refer":
        if videos is None:
            problems.append(_required(video_list, kind))
        if images is not None:
            problems.append(_not_allowed(image_list, kind))
    return problems


def _sentence(err: ErrorDetails) -> str:
    if err["type"] in ("too_short", "too_long") and "refer_images" in str(err["loc"]):
        return "must have 1-3 items"
    if err["type"] in ("too_short", "too_long") and "refer_videos" in str(err["loc"]):
        return "must have exactly one item"
    return sentence(err)


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
            problems.append(problem_of(err, path, f"{path} {_sentence(err)}"))
        parsed = None
    problems.extend(_cross_rules(raw))
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
