"""Parsing a video model's request body: pydantic's problems and the model's cross-field rules, all by dotted path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from reelgate.params import ParamProblem, dotted, problem_of, sentence

M = TypeVar("M", bound=BaseModel)
Problems = list[tuple[str, str]]


def _sentence(err: ErrorDetails) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be an integer"
    if kind == "bool_type":
        return "must be true or false"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item{'s' if ctx.get('min_length') != 1 else ''}"
    return sentence(err)


def path_of(loc: tuple[int | str, ...]) -> str:
    """A body location as the contract names it: ``duration``, ``image_urls[0]``, ``model_params.element_list``."""
    return dotted(loc[1:], str(loc[0])) if loc else "(body)"


def parse_video(cls: type[M], raw: Any, rules: Callable[[M], Problems]) -> M:
    """Validate the whole request body with ``cls``, then ``rules``; raise ParamProblem listing every problem."""
    if not isinstance(raw, dict):
        raise ParamProblem([("(body)", "the request body must be a JSON object")])
    if "model_params" in raw and not isinstance(raw["model_params"], dict):
        raise ParamProblem([("model_params", "model_params must be an object")])
    try:
        parsed = cls.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            path = path_of(err["loc"])
            problems.append(problem_of(err, path, f"{path} {_sentence(err)}"))
        raise ParamProblem(problems) from None
    found = rules(parsed)
    if found:
        raise ParamProblem(found)
    return parsed
