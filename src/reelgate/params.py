"""Rules shared by every model's params: free text as a reader sees it, media sources, problems by dotted path."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal, NamedTuple

import regex
from pydantic import ValidationInfo
from pydantic_core import ErrorDetails

MAX_URL_LENGTH = 2048
_DATA_URI_RE = re.compile(r"data:(image|video)/[a-zA-Z0-9.+-]+;base64,", re.IGNORECASE)
_B64_RE = re.compile(r"[A-Za-z0-9+/=_\-\s]+")
INTERNAL = {"internal": True}  # validation context of params already stored: allows asset:<name> references


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


def media_source(value: str, kind: Literal["image", "video"], info: ValidationInfo) -> str:
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


MISSING_PARAMETER = "missing_parameter"
INVALID_PARAMETER = "invalid_parameter"


class Missing(NamedTuple):
    """A problem that is a required field left out: answered as ``missing_parameter`` wherever the field sits (a
    plain ``(path, sentence)`` tuple is any other broken rule, ``invalid_parameter``)."""

    path: str
    message: str


def problem_code(problem: tuple[str, str]) -> str:
    return MISSING_PARAMETER if isinstance(problem, Missing) else INVALID_PARAMETER


class ParamProblem(ValueError):
    """All problems of one ``model_params``; each is ``(dotted path, sentence)``, a ``Missing`` one for a required
    field left out. ``code`` is the first problem's, the one the error body leads with."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems[0][1])
        self.problems = problems
        self.code = problem_code(problems[0])


def dotted(loc: tuple[int | str, ...], root: str = "model_params") -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def problem_of(err: ErrorDetails, path: str, text: str) -> tuple[str, str]:
    """One pydantic error as a problem: ``Missing`` when it is a required field left out."""
    return Missing(path, text) if err["type"] == "missing" else (path, text)


def sentence(err: ErrorDetails) -> str:
    """One pydantic error as the end of a sentence that starts with its dotted path."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind in ("string_type", "dict_type", "list_type", "model_type", "model_attributes_type"):
        want = {"string_type": "a string", "list_type": "an array"}.get(kind, "an object")
        return f"must be {want}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}".replace("'", "")
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"]).lower()
