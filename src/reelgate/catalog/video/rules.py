"""Cross-field rules of the video models' documents: shot modes, element references in prompts, media counts."""

from __future__ import annotations

import re
from collections.abc import Sequence

from reelgate.catalog.video.fields import O3Shots, V3Shots
from reelgate.catalog.video.parse import Problems
from reelgate.params import Missing

_ELEMENT_REF = re.compile(r"<<<element_(\d{1,4})>>>")


def shots(prompt: str | None, duration: int, params: V3Shots | O3Shots) -> Problems:
    """Multi-shot needs ``shot_type``; customize needs ``multi_prompt`` whose durations add up to ``duration``;
    otherwise ``prompt`` is required (customize takes each shot's prompt instead)."""
    problems: Problems = []
    customize = params.multi_shot and params.shot_type == "customize"
    if params.multi_shot and params.shot_type is None:
        problems.append(Missing("model_params.shot_type", "model_params.shot_type is required when multi_shot is true"))
    if customize and params.multi_prompt is None:
        problems.append(Missing("model_params.multi_prompt",
                                "model_params.multi_prompt is required when shot_type is customize"))  # fmt: skip
    if customize and params.multi_prompt is not None:
        total = sum(int(s.duration) for s in params.multi_prompt)
        if total != duration:
            problems.append(("model_params.multi_prompt", f"model_params.multi_prompt durations add up to {total} s; "
                             f"they must add up to duration ({duration} s)"))  # fmt: skip
    if not customize and not prompt:
        problems += no_prompt(prompt, " (only multi_shot with shot_type customize goes without one)")
    return problems


def shot_prompts(prompt: str | None, duration: int, params: V3Shots | O3Shots, elements: int) -> Problems:
    """The shot rules and the element references of every prompt (the main one and each shot's) of a model that
    takes multi-shot, with ``elements`` elements in its list."""
    shot_texts = [s.prompt for s in params.multi_prompt or []]
    return shots(prompt, duration, params) + element_refs(prompt, shot_texts, elements)


def prompt_required(prompt: str | None) -> Problems:
    return [] if prompt else no_prompt(prompt)


def no_prompt(prompt: str | None, why: str = "") -> Problems:
    """A prompt left out is a missing parameter; one given empty (or blank) is an invalid one."""
    if prompt is None:
        return [Missing("prompt", f"prompt is required{why}")]
    return [("prompt", f"prompt must not be empty{why}")]


def element_refs(prompt: str | None, shot_prompts: Sequence[str], elements: int) -> Problems:
    """Each ``<<<element_N>>>`` in a prompt must name an element of ``model_params.element_list`` (1..count)."""
    problems: Problems = []
    texts = [("prompt", prompt or "")] + [(f"model_params.multi_prompt[{i}].prompt", p) for i, p in
                                          enumerate(shot_prompts)]  # fmt: skip
    for path, text in texts:
        for n in sorted({int(m) for m in _ELEMENT_REF.findall(text)}):
            if not 1 <= n <= elements:
                have = f"has {elements} element{'s' if elements != 1 else ''}" if elements else "is empty or absent"
                problems.append((path, f"{path} refers to <<<element_{n}>>> but model_params.element_list {have}"))
    return problems


def at_most(path: str, count: int, limit: int, what: str) -> Problems:
    if count <= limit:
        return []
    return [(path, f"{path}: {what} may be at most {limit} together (got {count})")]
