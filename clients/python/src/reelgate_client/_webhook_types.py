"""Typed results of the webhook routes: the signing secret (its id; the secret itself only from a rotation) and a
task's callback delivery, each keeping the server's dict as ``raw``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from reelgate_client._webhooks import secret_id

DeliveryStatus = Literal["pending", "delivered", "dead"]
# A failed task's error.code (contract 3.2): the values ``client.tasks.list(error_code=...)`` takes.
TaskErrorCode = Literal[
    "content_policy_violation",
    "generation_failed_no_content",
    "generation_timeout",
    "image_dimension_mismatch",
    "image_processing_error",
    "invalid_parameters",
    "quota_exceeded",
    "request_cancelled",
    "resource_exhausted",
    "resource_not_found",
    "service_error",
    "service_unavailable",
    "unknown_error",
]


def _time(value: object) -> datetime | None:
    """An ISO 8601 time of the server (``...Z``) as an aware datetime; None when absent."""
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class WebhookSecret:
    """The account's webhook signing secret: its id and when it was made (Unix seconds). ``secret`` is set only on
    the answer to ``rotate_secret()``, the one time the server shows it."""

    id: str
    created: int
    secret: str | None = field(default=None, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def matches(self, secret: str) -> bool:
        """Whether ``secret`` (e.g. the one your receiver is configured with) is this secret."""
        return secret_id(secret) == self.id

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebhookSecret:
        secret = data.get("secret")
        return cls(
            id=str(data.get("id", "")),
            created=int(data.get("created") or 0),
            secret=secret if isinstance(secret, str) else None,
            raw=data,
        )


@dataclass(frozen=True)
class CallbackDelivery:
    """A task's callback delivery: one ``webhook-id`` (``id``) for every attempt of every round. ``attempts``
    counts every attempt made, ``resends`` the rounds started by a resend; ``next_attempt`` is set while pending."""

    id: str
    task_id: str
    url: str
    status: DeliveryStatus
    attempts: int
    resends: int
    in_flight: bool
    created: datetime | None
    finished_at: datetime | None
    next_attempt: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallbackDelivery:
        return cls(
            id=str(data.get("id", "")),
            task_id=str(data.get("task_id", "")),
            url=str(data.get("url", "")),
            status=cast(DeliveryStatus, str(data.get("status", ""))),
            attempts=int(data.get("attempts") or 0),
            resends=int(data.get("resends") or 0),
            in_flight=bool(data.get("in_flight")),
            created=_time(data.get("created")),
            finished_at=_time(data.get("finished_at")),
            next_attempt=_time(data.get("next_attempt")),
            raw=data,
        )
