"""The request fields the Kling video models share, as their EvoLink documents define them (URL media only)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from reelgate.params import free_text, is_url, media_source

PROMPT_MAX = 2500  # prompt and negative_prompt
SHOT_PROMPT_MAX = 512
MAX_ELEMENT_ID_DIGITS = 20  # Kling's ids are 64-bit integers
Quality = Literal["720p", "1080p", "4k"]
StdQuality = Literal["720p", "1080p"]
Sound = Literal["on", "off"]
AspectRatio = Literal["16:9", "9:16", "1:1"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


def prompt_text(value: str, limit: int, info: ValidationInfo) -> str:
    """A prompt: free text (reelgate.params) of at most ``limit`` characters in which line breaks and tabs are
    fine; empty is allowed here (whether it may be empty depends on the shot mode: rules.py)."""
    value = value.strip()
    if value:
        # The free-text rules refuse line breaks (names must be one line); a prompt may have several.
        free_text(value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " "), limit, info)
    return value


def url_source(value: str, kind: Literal["image", "video"], info: ValidationInfo) -> str:
    """An http(s) media URL of at most 2048 characters; these models take no Base64 (as EvoLink's documents say)."""
    value = media_source(value, kind, info)
    if not is_url(value):
        raise ValueError("must be an http(s) URL (this model takes media by URL, not Base64)")
    return value


def _image(value: str, info: ValidationInfo) -> str:
    return url_source(value, "image", info)


def _video(value: str, info: ValidationInfo) -> str:
    return url_source(value, "video", info)


def _prompt(value: str, info: ValidationInfo) -> str:
    return prompt_text(value, PROMPT_MAX, info)


ImageUrl = Annotated[str, AfterValidator(_image)]
VideoUrl = Annotated[str, AfterValidator(_video)]
Prompt = Annotated[str, AfterValidator(_prompt)]


class ElementRef(Strict):
    element_id: str

    @field_validator("element_id")
    @classmethod
    def _id(cls, v: str) -> str:
        v = v.strip()
        if not (v.isascii() and v.isdigit() and 1 <= len(v) <= MAX_ELEMENT_ID_DIGITS):
            raise ValueError(f"must be an element id (a decimal string of 1-{MAX_ELEMENT_ID_DIGITS} digits)")
        return v


class Shot(Strict):
    index: Annotated[int, Field(ge=1, le=6)]
    prompt: str
    duration: str

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str, info: ValidationInfo) -> str:
        v = prompt_text(v, SHOT_PROMPT_MAX, info)
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("duration")
    @classmethod
    def _duration(cls, v: str) -> str:
        v = v.strip()
        if not (v.isascii() and v.isdigit() and 1 <= int(v) <= 15):
            raise ValueError("must be a whole number of seconds from 1 to 15, as a string")
        return str(int(v))


class Watermark(Strict):
    enabled: bool | None = None


Elements3 = Annotated[list[ElementRef], Field(max_length=3)]
Elements7 = Annotated[list[ElementRef], Field(max_length=7)]
Shots = Annotated[list[Shot], Field(min_length=1, max_length=6)]
ImageUrls = Annotated[list[ImageUrl], Field(min_length=1, max_length=7)]


class V3Shots(Strict):
    """model_params of the V3 text and image models: multi-shot (customize or intelligence) and watermark."""

    multi_shot: bool = False
    shot_type: Literal["customize", "intelligence"] | None = None
    multi_prompt: Shots | None = None
    watermark_info: Watermark | None = None


class O3Shots(Strict):
    """model_params of the O3 text and image models: multi-shot (customize only) and watermark."""

    multi_shot: bool = False
    shot_type: Literal["customize"] | None = None
    multi_prompt: Shots | None = None
    watermark_info: Watermark | None = None
