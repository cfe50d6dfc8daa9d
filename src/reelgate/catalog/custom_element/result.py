"""kling-custom-element's public result: the contract's ``result_data`` for a created element, linking stored copies."""

from __future__ import annotations

from typing import Any

from reelgate.catalog.custom_element.params import CustomElementParams
from reelgate.catalog.custom_element.pipeline import StoredMedia


def result_data(params: CustomElementParams, element_id: str, stored: list[StoredMedia], url: Any) -> dict[str, Any]:
    """The contract's ``result_data`` for element ``element_id``; ``url`` makes a stored name a public link."""
    result: dict[str, Any] = {
        "element_id": element_id,
        "element_name": params.element_name,
        "element_description": params.element_description,
        "reference_type": params.reference_type,
        "tag_list": [t.model_dump() for t in params.tag_list or []],
    }
    images = [s for s in stored if s.kind == "image"]
    if images:
        result["element_image_list"] = {
            "frontal_image": url(images[0].name),
            "refer_images": [{"image_url": url(s.name)} for s in images[1:]],
        }
    for s in stored:
        if s.kind == "video":
            result["element_video_list"] = {
                "refer_videos": [{"video_url": url(s.name)}],
                "thumbnail_url": url(s.thumbnail) if s.thumbnail else None,
            }
    if params.element_voice_id:
        result["element_voice_info"] = {"voice_id": params.element_voice_id}
    return result
