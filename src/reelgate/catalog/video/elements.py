"""Element rules at submit, checked against the caller's element rows: each element exists in the caller's account,
was made upstream by Kling, has a type the model takes, and all live on one Kling channel (the task is pinned to it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from reelgate.catalog.spec import ElementInfo
from reelgate.catalog.video.parse import Problems
from reelgate.params import ParamProblem

KLING = "kling"
REFERENCE_TYPES = ("image_refer", "video_refer")


def _element_list(params: BaseModel) -> list[Any]:
    model_params = getattr(params, "model_params", None)
    return list(getattr(model_params, "element_list", None) or [])


def channel_of(upstream_id: str | None) -> str | None:
    """The channel that made an element: its upstream id is ``<channel>:<element id>``."""
    channel, sep, _ = (upstream_id or "").rpartition(":")
    return channel if sep and channel else None


@dataclass(frozen=True)
class ElementRules:
    """The element types a model takes (the element's ``reference_type``); counts are the params' own rules."""

    types: tuple[str, ...] = REFERENCE_TYPES

    def ids(self, params: BaseModel) -> list[str]:
        return [str(e.element_id) for e in _element_list(params)]

    def check(self, params: BaseModel, found: Mapping[str, ElementInfo]) -> dict[str, Any]:
        problems: Problems = []
        channels: dict[str, str] = {}  # channel -> first path that uses it
        for i, element_id in enumerate(self.ids(params)):
            path = f"model_params.element_list[{i}].element_id"
            problem, channel = self._one(element_id, found.get(element_id))
            if problem:
                problems.append((path, f"{path}: {problem}"))
            elif channel is not None:
                channels.setdefault(channel, path)
        if len(channels) > 1:
            path = list(channels.values())[1]
            problems.append((path, f"{path}: the elements of one task must all come from one upstream Kling "
                                   "account; these come from several (create them again on one account)"))  # fmt: skip
        if problems:
            raise ParamProblem(problems)
        return {"upstream": {"channel": next(iter(channels))}} if channels else {}

    def _one(self, element_id: str, element: ElementInfo | None) -> tuple[str | None, str | None]:
        if element is None:
            return f"element {element_id} was not found in this account", None
        if element.provider != KLING:
            return (f"element {element_id} was made by the {element.provider} engine and cannot be used upstream; "
                    "create it on a Kling channel"), None  # fmt: skip
        kind = element.data.get("reference_type")
        if kind not in self.types:
            return f"element {element_id} is a {kind} element; this model takes {' or '.join(self.types)} only", None
        channel = channel_of(element.upstream_id)
        if channel is None:
            return f"element {element_id} has no upstream account recorded; create it again", None
        return None, channel
