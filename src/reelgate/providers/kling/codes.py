"""Kling's answer codes and task statuses, and what each means for our task: the error code and a message safe to
show our user (no upstream URL, id or account detail survives, contract 8)."""

from __future__ import annotations

import re
from typing import Literal

AUTH_CODES = frozenset(range(1000, 1005))
ACCOUNT_CODES = frozenset(range(1100, 1104))
BAD_PARAM_CODES = frozenset({1200, 1201})
POLICY_CODES = frozenset({1300, 1301})
RETRYABLE_CODES = frozenset({1302, 1303, 5000, 5001, 5002})
KNOWN_CODES = AUTH_CODES | ACCOUNT_CODES | BAD_PARAM_CODES | POLICY_CODES | RETRYABLE_CODES | {1202, 1203, 1304}

TaskState = Literal["pending", "processing", "completed", "failed", "unknown"]


def map_status(status: str) -> TaskState:
    """Kling status to ours: ``submitted`` (queued upstream) is ``pending``; never move a task back."""
    return _STATUS_MAP.get(status.strip().lower(), "unknown")


_STATUS_MAP: dict[str, TaskState] = {
    "submitted": "pending",
    "processing": "processing",
    "succeed": "completed",
    "failed": "failed",
}

_ACCOUNT_MESSAGE = "The upstream provider account is unavailable."
_POLICY_MESSAGE = "The reference content was rejected by the provider's content policy."
_MEDIA_MESSAGE = "The provider could not process the reference media"
_PARAMS_MESSAGE = "The provider rejected the element parameters"
_CODE_FAILURES: dict[int, tuple[str, str]] = {
    1202: ("service_error", "The upstream provider rejected the request."),
    1203: ("resource_not_found", "The upstream task or element no longer exists."),
    1302: ("resource_exhausted", "The upstream provider is at capacity; try again later."),
    1303: ("resource_exhausted", "The upstream provider is at capacity; try again later."),
    5000: ("service_error", "The upstream provider had an internal error."),
    5001: ("service_unavailable", "The upstream provider is temporarily unavailable."),
    5002: ("generation_timeout", "The upstream provider timed out."),
}
_POLICY_WORDS = ("policy", "risk", "sensitive", "violat", "inappropriate", "nsfw", "prohibited", "censor")
_ACCOUNT_WORDS = (
    "account",
    "arrear",
    "balance",
    "resource pack",
    "authoriz",
    "unauthoriz",
    "quota",
    "api key",
    "access key",
    "whitelist",
)
_MEDIA_WORDS = (
    "image",
    "picture",
    "photo",
    "video",
    "media",
    "resolution",
    "aspect ratio",
    "dimension",
    "face",
    "download",
    "decode",
    "file format",
)
_SCRUB_PATTERNS = (
    (r"[A-Za-z][\w+.-]*://\S+", "<url>"),
    (r"\S+@\S+\.\S+", "<email>"),
    (r"\b(?=[\w-]*\d)[\w-]{12,}\b", "<id>"),
    (r"\d{6,}", "<id>"),
)


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    """Any word starts a word of ``text`` ("face" matches "faces", not "interface")."""
    return re.search(r"\b(?:" + "|".join(map(re.escape, words)) + ")", text) is not None


def _safe_detail(base: str, upstream: str) -> str:
    """``base`` plus a scrubbed, shortened upstream reason: no URLs, ids, emails or request ids survive."""
    detail = re.split(r"(?i)request[\s_-]*id", upstream)[0]
    for pattern, replacement in _SCRUB_PATTERNS:
        detail = re.sub(pattern, replacement, detail)
    detail = " ".join(detail.split()).strip(" .,:;")[:160]
    return f"{base}: {detail}." if detail else f"{base}."


def map_failure(status_msg: str, code: int | None) -> tuple[str, str]:
    """(our task error code, a message safe for our user) for a failed task or refused create (contract 8)."""
    text = status_msg.lower()
    if code in POLICY_CODES or _mentions(text, _POLICY_WORDS):
        return "content_policy_violation", _POLICY_MESSAGE
    if code in AUTH_CODES or code in ACCOUNT_CODES or code == 1304 or _mentions(text, _ACCOUNT_WORDS):
        return "service_error", _ACCOUNT_MESSAGE
    if _mentions(text, _MEDIA_WORDS):
        return "image_processing_error", _safe_detail(_MEDIA_MESSAGE, status_msg)
    if code in BAD_PARAM_CODES:
        return "invalid_parameters", _safe_detail(_PARAMS_MESSAGE, status_msg)
    if code is not None and code in _CODE_FAILURES:
        return _CODE_FAILURES[code]
    return "unknown_error", "The provider could not create the element."
