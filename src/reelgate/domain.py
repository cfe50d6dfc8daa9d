"""Tasks and elements as values: statuses, id generation, pure transition rules, the public task object and the
public callback delivery log."""

from __future__ import annotations

import os
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

PENDING: Final = "pending"
PROCESSING: Final = "processing"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
ACTIVE_STATUSES: Final = (PENDING, PROCESSING)
TERMINAL_STATUSES: Final = (COMPLETED, FAILED)
STATUSES: Final = (PENDING, PROCESSING, COMPLETED, FAILED)

TASK_ID_PREFIX: Final = "task-unified-"
_ALPHABET: Final = string.digits + string.ascii_lowercase  # in ASCII order, so ids sort by time
_SUBSECOND_SLOTS: Final = 36**2
_SLOT_SYMBOLS: Final = tuple(_ALPHABET[slot // 36] + _ALPHABET[slot % 36] for slot in range(_SUBSECOND_SLOTS))
_UNIFORM_BYTES: Final = 252  # the largest multiple of 36 a byte can hold
_SYMBOL_OF_BYTE: Final = tuple(_ALPHABET[b % 36] for b in range(_UNIFORM_BYTES))
_TASK_ID_RE: Final = re.compile(r"task-unified-[0-9]{1,12}-[a-z0-9]{8}")  # ASCII: \d takes any script's digits
MAX_LOCAL_ELEMENT_ID: Final = 2**53 - 1

TASK_ERROR_CODES: Final = frozenset(
    {
        "content_policy_violation",
        "invalid_parameters",
        "image_processing_error",
        "image_dimension_mismatch",
        "request_cancelled",
        "generation_failed_no_content",
        "service_error",
        "generation_timeout",
        "resource_exhausted",
        "quota_exceeded",
        "service_unavailable",
        "resource_not_found",
        "unknown_error",
    }
)


def new_task_id(now: float) -> str:
    """``task-unified-<unix seconds>-<8 chars>``: 2 chars of the time within the second, then 6 random ones.

    Random suffixes alone put each new id at a random place in the primary-key index, so a group commit of 50
    submits dirtied about 50 index pages (most of the bytes it wrote and synced); ids that follow arrival order
    land on the same page or two. The 6 chars are 31 bits of cryptographic randomness, drawn anew for every id
    (plus the ~10 bits of when in its second the task came, to whoever does not know that).
    """
    seconds = int(now)
    slot = min(int((now - seconds) * _SUBSECOND_SLOTS), _SUBSECOND_SLOTS - 1)
    while True:
        # One read of the OS generator for the 6 symbols: a byte below 252 (7 x 36) picks one uniformly, and 8
        # bytes hold 6 such bytes but about once in 5,000 ids (then it reads again). Half the CPU of drawing one
        # number below 36**6 with secrets.randbelow (which rejects about half its 32-bit draws) and spelling it in
        # base 36.
        symbols = [_SYMBOL_OF_BYTE[b] for b in os.urandom(8) if b < _UNIFORM_BYTES]
        if len(symbols) >= 6:
            return f"{TASK_ID_PREFIX}{seconds}-{_SLOT_SYMBOLS[slot]}{''.join(symbols[:6])}"


def is_task_id(value: str) -> bool:
    return _TASK_ID_RE.fullmatch(value) is not None


def new_element_id() -> str:
    """A decimal id below 2^53, so even clients that parse it as a float keep every digit."""
    return str(secrets.randbelow(MAX_LOCAL_ELEMENT_ID - 10**12) + 10**12)


def new_webhook_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def format_credits(milli: int) -> int | float:
    """Credits are kept in thousandths; whole amounts are shown as integers, as the vendor does."""
    return milli // 1000 if milli % 1000 == 0 else milli / 1000


# Not frozen, but slotted: a frozen dataclass sets each of its 16 fields through object.__setattr__, about 4x
# the construction cost, and one of these is built for every task read and every submit. Nothing assigns to it.
@dataclass(slots=True)
class TaskRecord:
    """One task row as the API needs it: a value, never changed once built."""

    id: str
    account_id: int
    model: str
    status: str
    progress: int
    created: int
    cancellable: bool
    estimated_time: int
    price: int
    user_group: str
    billing_rule: str
    charged: int | None
    result: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    callback_url: str | None

    @property
    def can_cancel(self) -> bool:
        return self.status in ACTIVE_STATUSES and self.cancellable

    def public(self) -> dict[str, Any]:
        """The contract's task object (3.2): the submit answer, the query answer and the callback body."""
        usage: dict[str, Any] = {
            "billing_rule": self.billing_rule,
            "credits_reserved": format_credits(self.price),
            "user_group": self.user_group,
        }
        if self.charged is not None:
            usage["credits_charged"] = format_credits(self.charged)
        body: dict[str, Any] = {
            "created": self.created,
            "id": self.id,
            "model": self.model,
            "object": "video.generation.task",
            "progress": self.progress,
            "status": self.status,
            "task_info": {"can_cancel": self.can_cancel, "estimated_time": self.estimated_time},
            "type": "video",
            "usage": usage,
        }
        if self.status == COMPLETED and self.result is not None:
            # A model that makes media shows its URLs as ``results`` (contract §9); the element model, result_data.
            results = self.result.get("results")
            if isinstance(results, list):
                body["results"] = results
            else:
                body["result_data"] = self.result
        if self.status == FAILED:
            # "type" tells a task's failure from a request's error body, whose types end in _error (contract §9)
            body["error"] = {"code": self.error_code or "unknown_error", "message": self.error_message or "",
                             "type": "task_error"}  # fmt: skip
        return body


_TIMES = ("created", "finished_at", "started_at", "next_attempt")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def delivery_view(row: dict[str, Any]) -> dict[str, Any]:
    """A delivery or attempt row as a tenant reads it: ISO 8601 UTC times, latency to 0.1 ms, and no next attempt
    where none will come (a dead or delivered delivery keeps its last schedule in the row, which means nothing)."""
    if row.get("status") in ("dead", "delivered") or row.get("next_attempt") is None:
        row.pop("next_attempt", None)
    for name in _TIMES:
        if isinstance(row.get(name), int | float):
            row[name] = _iso(float(row[name]))
    if isinstance(row.get("latency_ms"), int | float):
        row["latency_ms"] = round(float(row["latency_ms"]), 1)
    return row
