"""The OpenAPI paths and schemas of the tenant's webhook routes (api/webhooks.py) and of the task list's
``error_code`` filter, merged into the document by api/openapi.py.

Error answers refer to the document's ``Error`` schema; everything else named here is defined here.
"""

from __future__ import annotations

from typing import Any

from reelgate.domain import TASK_ERROR_CODES

_REF = "#/components/schemas/"
TAGS = ["Webhooks"]
_ERRORS = {
    "400": ("Invalid request", "invalid_task_id", "invalid_request_error",
            "task_id must look like task-unified-<seconds>-<8 characters>"),
    "401": ("Missing or bad API key", "invalid_api_key", "authentication_error", "invalid API key"),
    "404": ("Not found (also another tenant's task)", "task_not_found", "not_found_error",
            "task task-unified-1767225600-0a1b2c3d not found"),
    "409": ("The delivery cannot be resent now", "callback_pending", "conflict_error",
            "the callback of task task-unified-1767225600-0a1b2c3d is still being delivered (an attempt is under "
            "way right now); it can be resent once its last attempt has failed (status dead)"),
    "429": ("Rate limited (Retry-After says when to retry)", "rate_limit_exceeded", "rate_limit_error",
            "callback resends are limited to 5 a minute per account; retry in 12 s"),
    "503": ("Unavailable (Retry-After says when to retry)", "service_unavailable", "service_unavailable_error",
            "the service is temporarily unavailable; retry shortly"),
}  # fmt: skip
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
_SECRET_ID = {"type": "string", "pattern": "^whk_[0-9a-f]{16}$", "description": (
    "The secret's id: `whk_` and the first 16 hex digits of the SHA-256 of the secret (the `whsec_...` string). "
    "Compute it from the secret your receiver holds to tell whether it is the current one.")}  # fmt: skip
_CREATED = {"type": "integer", "description": "When the secret was made, in Unix seconds."}
_EXAMPLE_SECRET = {"object": "webhook_secret", "id": "whk_ea1a4e8e212b3324", "created": 1767225600}
_EXAMPLE_ROTATED = {**_EXAMPLE_SECRET, "secret": "whsec_Gm1x7bJ0cQkR2yF3tW8vN5pL6sD9hA4eZ0uI1oK7jTc="}
_EXAMPLE_DELIVERY = {
    "object": "callback_delivery", "id": "msg_Qm9vdHN0cmFwcGVkLWlk", "task_id": "task-unified-1767225600-0a1b2c3d",
    "url": "https://example.com/hooks/reelgate", "status": "pending", "attempts": 4,
    "next_attempt": "2026-01-01T00:05:00.000Z", "created": "2026-01-01T00:00:07.512Z", "finished_at": None,
    "resends": 1, "in_flight": False,
}  # fmt: skip


def _json(schema: str, example: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF + schema}, "example": example}}}


def _errors(*codes: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in codes:
        description, error_code, kind, message = _ERRORS[code]
        example = {"error": {"code": error_code, "message": message, "type": kind}}
        if code in ("400", "404", "409"):
            example["error"]["param"] = "task_id"
        out[code] = {"description": description, **_json("Error", example)}
        if code in ("429", "503"):
            out[code]["headers"] = _RETRY_AFTER
    return out


def webhook_schemas() -> dict[str, Any]:
    """Components: the secret as reads show it, as a rotation shows it (once), and a callback delivery."""
    return {
        "WebhookSecret": {
            "type": "object",
            "description": "The account's webhook signing secret as it may be shown at any time: its id and when "
            "it was made, never the secret itself.",
            "required": ["object", "id", "created"],
            "properties": {
                "object": {"const": "webhook_secret", "description": "Always `webhook_secret`."},
                "id": _SECRET_ID,
                "created": _CREATED,
            },
            "examples": [_EXAMPLE_SECRET],
        },
        "WebhookSecretRotated": {
            "type": "object",
            "description": "A signing secret just made by a rotation. `secret` is shown in this answer only: store "
            "it now (later reads show its id). Every callback attempt from now on is signed with it.",
            "required": ["object", "id", "created", "secret"],
            "properties": {
                "object": {"const": "webhook_secret", "description": "Always `webhook_secret`."},
                "id": _SECRET_ID,
                "created": _CREATED,
                "secret": {
                    "type": "string",
                    "pattern": "^whsec_[A-Za-z0-9+/]{43}=$",
                    "description": ("The new secret (Standard Webhooks `whsec_` form: base64 of 32 random bytes)."),
                },  # fmt: skip
            },
            "examples": [_EXAMPLE_ROTATED],
        },
        "CallbackDelivery": {
            "type": "object",
            "description": "A task's callback delivery: one webhook-id for every attempt, resends included. "
            "Times are ISO 8601 UTC.",
            "required": ["object", "id", "task_id", "url", "status", "attempts", "created", "resends", "in_flight"],
            "properties": {
                "object": {"const": "callback_delivery", "description": "Always `callback_delivery`."},
                "id": {"type": "string", "description": "The webhook-id header of every attempt."},
                "task_id": {
                    "type": "string",
                    "pattern": "^task-unified-[0-9]+-[a-z0-9]{8}$",
                    "description": "The task whose callback this is.",
                },
                "url": {"type": "string", "description": "The task's callback_url."},
                "status": {
                    "enum": ["pending", "delivered", "dead"],
                    "description": (
                        "pending: an attempt is due or under way; delivered: a receiver answered 2xx; dead: every "
                        "attempt of the last round failed (it may be resent)."
                    ),
                },  # fmt: skip
                "attempts": {"type": "integer", "minimum": 0, "description": "Attempts made, every round counted."},
                "next_attempt": {
                    "type": "string",
                    "format": "date-time",
                    "description": ("When the next attempt is due; only while pending."),
                },  # fmt: skip
                "created": {"type": "string", "format": "date-time", "description": "When the delivery was queued."},
                "finished_at": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "When it was delivered or went dead; null while pending.",
                },
                "resends": {"type": "integer", "minimum": 0, "description": "Rounds started by a resend."},
                "in_flight": {"type": "boolean", "description": "Whether an attempt is under way right now."},
            },
            "examples": [_EXAMPLE_DELIVERY],
        },
    }


def webhook_paths() -> dict[str, Any]:
    """Paths: read the secret's id, rotate the secret, resend a task's dead callback."""
    task_id = {"name": "task_id", "in": "path", "required": True, "description": "The task's id.",
               "schema": {"type": "string", "pattern": "^task-unified-"}}  # fmt: skip
    return {
        "/v1/webhooks/secret": {"get": {
            "operationId": "getWebhookSecret", "tags": TAGS,
            "summary": "Read the webhook signing secret's id",
            "description": "The id of the secret your callbacks are signed with (Standard Webhooks headers "
            "`webhook-id`, `webhook-timestamp`, `webhook-signature`) and when it was made. The secret itself is "
            "shown only by a rotation.",
            "responses": {"200": {"description": "The current secret's id", **_json("WebhookSecret", _EXAMPLE_SECRET)},
                          **_errors("401", "429", "503")},
        }},
        "/v1/webhooks/secret/rotate": {"post": {
            "operationId": "rotateWebhookSecret", "tags": TAGS,
            "summary": "Rotate the webhook signing secret",
            "description": "Replaces the signing secret at once and answers the new one, this once (store it "
            "now). Every callback attempt from now on, retries of earlier deliveries included, is signed with the "
            "new secret; the old one signs nothing more. The answer is sent with `Cache-Control: no-store`.",
            "responses": {"200": {"description": "The new secret, shown once",
                                  **_json("WebhookSecretRotated", _EXAMPLE_ROTATED)},
                          **_errors("401", "429", "503")},
        }},
        "/v1/tasks/{task_id}/callbacks/resend": {"post": {
            "operationId": "resendTaskCallback", "tags": [*TAGS, "Tasks"], "parameters": [task_id],
            "summary": "Resend a task's dead callback",
            "description": "Queues the callback of one of your finished tasks again when its delivery is dead "
            "(every attempt failed): a new round of attempts at once, retried after 1, 2 and 4 s, with the same "
            "webhook-id, the task object as it is now and the current secret's signature. A delivery still pending "
            "(`callback_pending`) or already delivered (`callback_already_delivered`), a task without a "
            "callback_url (`no_callback_url`) or not finished (`task_not_finished`) answer 409. At most 5 resends "
            "a minute per account (429 with Retry-After). Another tenant's task answers 404, as an unknown one.",
            "responses": {"202": {"description": "Queued: the delivery, pending again",
                                  **_json("CallbackDelivery", _EXAMPLE_DELIVERY)},
                          **_errors("400", "401", "404", "409", "429", "503")},
        }},
    }  # fmt: skip


def task_list_error_code_parameter() -> dict[str, Any]:
    """``GET /v1/tasks``'s ``error_code`` query parameter, for the listTasks operation's parameters."""
    return {
        "name": "error_code",
        "in": "query",
        "description": "Only failed tasks whose error.code is this (e.g. request_cancelled: the tasks you "
        "cancelled). Any other value answers 400 naming error_code and listing the codes.",
        "schema": {"enum": sorted(TASK_ERROR_CODES)},
        "example": "request_cancelled",
    }
