"""The OpenAPI document's answer objects: the task (contract §3.2), the error body (§2), elements, models, credits
and the callback delivery log, each with a description of every field and an example."""

from __future__ import annotations

import copy
from typing import Any

from reelgate.domain import STATUSES, TASK_ERROR_CODES

REF = "#/components/schemas/"
TASK_ID_PATTERN = "^task-unified-[0-9]{1,12}-[a-z0-9]{8}$"
ELEMENT_ID_PATTERN = "^[0-9]{1,20}$"
_CREDIT = {"type": "number", "minimum": 0}


def _object(description: str, props: dict[str, tuple[dict[str, Any], str]], required: list[str],
            example: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """An object schema from ``name: (schema, description)`` pairs."""
    return {
        "type": "object",
        "description": description,
        "required": required,
        "properties": {name: {**schema, "description": words} for name, (schema, words) in props.items()},
        "examples": [example],
    }


PENDING_TASK: dict[str, Any] = {
    "created": 1757169743, "id": "task-unified-1757169743-8dxnm6yz", "model": "kling-custom-element",
    "object": "video.generation.task", "progress": 0, "status": "pending",
    "task_info": {"can_cancel": True, "estimated_time": 600}, "type": "video",
    "usage": {"billing_rule": "per_call", "credits_reserved": 1, "user_group": "default"},
}  # fmt: skip
_RESULT_DATA: dict[str, Any] = {
    "element_id": "1873962536493486080", "element_name": "My Character",
    "element_description": "A young male character with short hair, wearing a white T-shirt",
    "reference_type": "image_refer", "tag_list": [],
    "element_image_list": {"frontal_image": "https://reelgate.example.com/assets/3f9a0c1e.jpg",
                           "refer_images": [{"image_url": "https://reelgate.example.com/assets/b71d2e44.jpg"}]},
}  # fmt: skip
COMPLETED_TASK: dict[str, Any] = {**PENDING_TASK, "progress": 100, "status": "completed",
                  "task_info": {"can_cancel": False, "estimated_time": 600},
                  "usage": {**PENDING_TASK["usage"], "credits_charged": 1}, "result_data": _RESULT_DATA}  # fmt: skip
COMPLETED_VIDEO: dict[str, Any] = {
    "created": 1757170012, "id": "task-unified-1757170012-0k3vq7ma", "model": "kling-v3-image-to-video",
    "object": "video.generation.task", "progress": 100, "status": "completed",
    "task_info": {"can_cancel": False, "estimated_time": 300}, "type": "video",
    "usage": {"billing_rule": "per_second", "credits_reserved": 26.785, "credits_charged": 26.785,
              "user_group": "default"},
    "results": ["https://reelgate.example.com/assets/9c41f0d2.mp4"],
}  # fmt: skip
FAILED_TASK: dict[str, Any] = {
    **PENDING_TASK, "status": "failed", "task_info": {"can_cancel": False, "estimated_time": 600},
    "usage": {**PENDING_TASK["usage"], "credits_charged": 0},
    "error": {"code": "request_cancelled", "message": "The task was cancelled by the client.", "type": "task_error"},
}  # fmt: skip

_TASK_INFO = _object("Whether the task can still be cancelled, and how long it is expected to take.", {
    "can_cancel": ({"type": "boolean"}, "True while `POST /v1/tasks/{task_id}/cancel` can still cancel it."),
    "estimated_time": ({"type": "integer", "minimum": 0},
                       "Seconds the task is expected to take, from this deployment's recent tasks of the model."),
}, ["can_cancel", "estimated_time"], PENDING_TASK["task_info"])  # fmt: skip
_USAGE = _object("What the task costs, in credits.", {
    "billing_rule": ({"enum": ["per_call", "per_second"]},
                     "`per_call`: one price a task; `per_second`: the price per second of video times its seconds."),
    "credits_reserved": (_CREDIT, "Credits held from the account when the task was submitted."),
    "credits_charged": (_CREDIT, "Present once the task is settled (an extension): the reserved amount when "
                                 "completed, 0 when failed or cancelled (the reservation is released)."),
    "user_group": ({"type": "string"}, "The price group of the account that submitted the task."),
}, ["billing_rule", "credits_reserved", "user_group"], PENDING_TASK["usage"])  # fmt: skip
_RESULT: dict[str, Any] = {
    "type": "object",
    "description": "kling-custom-element's result, on a completed task: the element and links to Reelgate's "
                   "stored copies of its media. `element_id` is a decimal string (never parse it as a float).",
    "required": ["element_id", "element_name", "element_description", "reference_type"],
    "properties": {
        "element_id": {"type": "string", "pattern": ELEMENT_ID_PATTERN,
                       "description": "The element's id, for `model_params.element_list` of the video models."},
        "element_name": {"type": "string", "description": "As submitted, trimmed."},
        "element_description": {"type": "string", "description": "As submitted, trimmed."},
        "reference_type": {"enum": ["image_refer", "video_refer"], "description": "As submitted."},
        "element_image_list": {"type": "object", "description": "Links to the stored images (image_refer)."},
        "element_video_list": {"type": "object", "description": "Links to the stored video and its thumbnail "
                                                                "(video_refer)."},
        "tag_list": {"type": "array", "items": {"type": "object"}, "description": "The tags, as submitted."},
        "element_voice_info": {"type": "object", "description": "The voice, when one was given."},
    },
    "examples": [_RESULT_DATA],
}  # fmt: skip
_TASK_ERROR = _object("Why a task failed (`type` is always `task_error`, telling it from a request's error body).", {
    "code": ({"enum": sorted(TASK_ERROR_CODES)},
             "EvoLink's task error code; `request_cancelled` for a cancelled task."),
    "message": ({"type": "string"}, "What happened, in a sentence."),
    "type": ({"const": "task_error"}, "Always `task_error`."),
}, ["code", "message", "type"], FAILED_TASK["error"])  # fmt: skip

TASK = _object(
    "A generation task: the answer to a submit, a query and a cancel, and the body of its callback. Its `status` "
    "goes `pending` -> `processing` -> `completed` or `failed`; a cancelled task is `failed` with the error code "
    "`request_cancelled`.",
    {
        "created": ({"type": "integer"}, "When the task was submitted, in Unix seconds."),
        "id": (
            {"type": "string", "pattern": TASK_ID_PATTERN},
            "The task id: `task-unified-<Unix seconds>-<8 characters>`, unguessable.",
        ),
        "model": ({"type": "string"}, "The model the task runs."),
        "object": ({"const": "video.generation.task"}, "Always `video.generation.task`."),
        "progress": (
            {"type": "integer", "minimum": 0, "maximum": 100},
            "0-100, never decreasing; 100 only when completed.",
        ),
        "status": ({"enum": list(STATUSES)}, "Where the task is; `completed` and `failed` are final."),
        "task_info": ({"$ref": REF + "TaskInfo"}, "Cancellation and timing."),
        "type": ({"const": "video"}, "Always `video`."),
        "usage": ({"$ref": REF + "Usage"}, "The task's cost."),
        "result_data": (
            {"$ref": REF + "ElementResult"},
            "On a completed kling-custom-element task: the element it made.",
        ),
        "results": (
            {"type": "array", "items": {"type": "string", "format": "uri"}},
            "On a completed video task: URLs of the videos, stored and served by Reelgate.",
        ),
        "error": ({"$ref": REF + "TaskError"}, "On a failed task: why."),
    },
    ["created", "id", "model", "object", "progress", "status", "task_info", "type", "usage"],
    PENDING_TASK,
)
TASK["examples"] = [PENDING_TASK, COMPLETED_TASK, COMPLETED_VIDEO, FAILED_TASK]

_ERROR_EXAMPLE: dict[str, Any] = {"error": {"code": "invalid_parameter", "type": "invalid_request_error",
                            "message": "model_params.element_name must be 1-20 characters",
                            "param": "model_params.element_name"}}  # fmt: skip
_ERROR_DETAIL = _object("One problem of a request that had several.", {
    "param": ({"type": "string"}, "The dotted path of the field."),
    "message": ({"type": "string"}, "What is wrong with it."),
    "code": ({"type": "string"}, "`missing_parameter` or `invalid_parameter`."),
}, ["param", "message"], {"param": "model_params.element_name", "message": "model_params.element_name must be "
                                                                           "1-20 characters",
                          "code": "invalid_parameter"})  # fmt: skip
_ERROR_FIELDS = _object("The error.", {
    "code": ({"type": "string"}, "A stable snake_case code to branch on (e.g. `missing_parameter`, "
                                 "`invalid_parameter`, `model_not_found`, `insufficient_credits`)."),
    "message": ({"type": "string"}, "One sentence a person can act on."),
    "type": ({"enum": ["invalid_request_error", "authentication_error", "insufficient_quota_error",
                       "permission_error", "not_found_error", "conflict_error", "request_too_large_error",
                       "rate_limit_error", "internal_server_error", "upstream_error", "service_unavailable_error"]},
             "The class of error, one per HTTP status."),
    "param": ({"type": "string"}, "The dotted path of the field at fault, when there is one."),
    "fallback_suggestion": ({"type": "string"}, "A hint on what to do instead, when there is one."),
    "details": ({"type": "array", "items": {"$ref": REF + "ErrorDetail"}},
                "Every problem, when the request had more than one (the first is also `param` and `message`)."),
}, ["code", "message", "type"], _ERROR_EXAMPLE["error"])  # fmt: skip
ERROR = _object("The body of every answer that is not 2xx.", {"error": ({"$ref": REF + "ErrorFields"}, "The error.")},
                ["error"], _ERROR_EXAMPLE)  # fmt: skip

ELEMENT_EXAMPLE: dict[str, Any] = {"object": "element", "id": "1873962536493486080",
                                   "task_id": "task-unified-1757169743-8dxnm6yz", "created": 1757169801,
                                   **_RESULT_DATA}  # fmt: skip
ELEMENT = {
    **_object("A subject element of your account, made by a kling-custom-element task: its `result_data` with its "
              "task and creation time.", {
        "object": ({"const": "element"}, "Always `element`."),
        "id": ({"type": "string", "pattern": ELEMENT_ID_PATTERN}, "The element id (a decimal string)."),
        "task_id": ({"type": "string", "pattern": TASK_ID_PATTERN}, "The task that made it."),
        "created": ({"type": "integer"}, "When it was made, in Unix seconds."),
        **{name: (copy.deepcopy(prop), prop["description"]) for name, prop in _RESULT["properties"].items()
           if name != "element_id"},
        "element_id": ({"type": "string", "pattern": ELEMENT_ID_PATTERN}, "The same as `id`."),
    }, ["object", "id", "task_id", "created"], ELEMENT_EXAMPLE),
}  # fmt: skip
DELETED_ELEMENT = _object("The answer to a delete.", {
    "object": ({"const": "element"}, "Always `element`."),
    "id": ({"type": "string", "pattern": ELEMENT_ID_PATTERN}, "The deleted element's id."),
    "deleted": ({"const": True}, "Always true."),
}, ["object", "id", "deleted"], {"object": "element", "id": "1873962536493486080", "deleted": True})  # fmt: skip


def list_of(item: str, description: str, example: dict[str, Any]) -> dict[str, Any]:
    """A cursor-paginated list: pass ``last_id`` as ``after`` for the next page while ``has_more``."""
    return _object(description, {
        "object": ({"const": "list"}, "Always `list`."),
        "data": ({"type": "array", "items": {"$ref": REF + item}}, "This page, newest first."),
        "has_more": ({"type": "boolean"}, "Whether another page follows."),
        "last_id": ({"type": ["string", "null"]}, "The last item's id: pass it as `after` for the next page "
                                                  "(null on an empty page)."),
    }, ["object", "data", "has_more"], {"object": "list", "data": [example], "has_more": False,
                                        "last_id": example["id"]})  # fmt: skip


_PRICE_ROW = _object("One price of the model for your group.", {
    "user_group": ({"type": "string"}, "Your price group."),
    "unit": ({"enum": ["call", "second"]}, "What the price is per: a task (`call`) or a second of video."),
    "quality": ({"type": "string"}, "The `quality` tier this price is for (per-second models)."),
    "sound": ({"enum": ["on", "off"]}, "The `sound` setting this price is for (per-second models with sound)."),
    "price": (_CREDIT, "Credits per unit."),
}, ["user_group", "unit", "price"], {"user_group": "default", "unit": "call", "price": 1})  # fmt: skip
_FIELD_RULE: dict[str, Any] = {
    "type": "object",
    "description": "One field a model's request takes and its rules, the same as the request schema states.",
    "required": ["field", "type", "required"],
    "properties": {
        "field": {"type": "string", "description": "The field's dotted path in the request body (`[]` for each "
                                                   "item of a list)."},
        "type": {"type": "string", "description": "Its JSON type."},
        "required": {"type": "boolean", "description": "Whether every request must have it (some fields are "
                                                       "required only with others: see `description`)."},
        "description": {"type": "string", "description": "What it is and its rules, in words."},
    },
    "additionalProperties": {"description": "A JSON Schema rule of the field, by name in snake_case: `enum`, "
                                            "`const`, `default`, `minimum`, `maximum`, `min_length`, `max_length`, "
                                            "`pattern`, `format`, `min_items`, `max_items`, `unique_items`."},
    "examples": [{"field": "model_params.element_name", "type": "string", "required": True, "min_length": 1,
                  "max_length": 20, "description": "The element's name: 1-20 characters ..."}],
}  # fmt: skip
_MODEL_EXAMPLE: dict[str, Any] = {"id": "kling-custom-element", "object": "model", "type": "video",
                  "description": "Turns reference images or one video into a reusable subject element (element_id).",
                  "billing_rule": "per_call", "price": 1, "user_group": "default", "available": True,
                  "prices": [{"user_group": "default", "unit": "call", "price": 1}],
                  "request_schema": {"type": "object", "required": ["model", "model_params"]},
                  "fields": [_FIELD_RULE["examples"][0]]}  # fmt: skip
MODEL = _object("A model of the catalogue, with its price for your group and the rules of its request.", {
    "id": ({"type": "string"}, "The model's id, the `model` of a request."),
    "object": ({"const": "model"}, "Always `model`."),
    "type": ({"type": "string"}, "What it makes (`video`)."),
    "description": ({"type": "string"}, "What the model does."),
    "billing_rule": ({"enum": ["per_call", "per_second"]}, "How its tasks are billed."),
    "price": ({"type": ["number", "null"], "minimum": 0},
              "Credits per call, or the lowest per-second price; null when your group may not use the model."),
    "user_group": ({"type": "string"}, "Your price group."),
    "available": ({"type": "boolean"}, "Whether you can submit tasks for it on this deployment (your group has a "
                                       "price and a provider serves it)."),
    "prices": ({"type": "array", "items": {"$ref": REF + "ModelPrice"}}, "Every price your group has."),
    "request_schema": ({"type": "object"}, "The JSON Schema (2020-12) of the model's request body, self-contained: "
                                           "the same schema as in /openapi.json."),
    "fields": ({"type": "array", "items": {"$ref": REF + "ModelField"}},
               "Every field of the request and its rules (limits, enums, lengths, formats, required), flattened "
               "from `request_schema`."),
}, ["id", "object", "type", "description", "billing_rule", "price", "user_group", "available", "prices",
    "request_schema", "fields"], _MODEL_EXAMPLE)  # fmt: skip
MODEL_LIST = _object("The model catalogue.", {
    "object": ({"const": "list"}, "Always `list`."),
    "data": ({"type": "array", "items": {"$ref": REF + "Model"}}, "Every model."),
}, ["object", "data"], {"object": "list", "data": [_MODEL_EXAMPLE]})  # fmt: skip

_CREDITS_EXAMPLE: dict[str, Any] = {"success": True, "message": "ok", "data": {
    "token": {"remaining_credits": 98.5, "unlimited_credits": False, "used_credits": 1.5},
    "user": {"remaining_credits": 98.5, "used_credits": 1.5}}}  # fmt: skip
_KEY_CREDITS = _object("The calling key's view.", {
    "remaining_credits": (_CREDIT, "What this key may still spend: its account's available credits."),
    "unlimited_credits": ({"type": "boolean"}, "Whether the key has no limit of its own (always false)."),
    "used_credits": (_CREDIT, "What this key's tasks were charged."),
}, ["remaining_credits", "unlimited_credits", "used_credits"], _CREDITS_EXAMPLE["data"]["token"])  # fmt: skip
_ACCOUNT_CREDITS = _object("The account's view.", {
    "remaining_credits": (_CREDIT, "Credits available (credits held for running tasks excluded)."),
    "used_credits": (_CREDIT, "Credits charged for completed tasks."),
}, ["remaining_credits", "used_credits"], _CREDITS_EXAMPLE["data"]["user"])  # fmt: skip
CREDITS = _object("Your remaining and used credits, in EvoLink's shape (get-credits.json).", {
    "success": ({"const": True}, "Always true."),
    "message": ({"type": "string"}, "A short status message."),
    "data": (_object("The key's and the account's credits.", {
        "token": (_KEY_CREDITS, "The calling API key."),
        "user": (_ACCOUNT_CREDITS, "The key's account."),
    }, ["token", "user"], _CREDITS_EXAMPLE["data"]), "The key's and the account's credits."),
}, ["success", "message", "data"], _CREDITS_EXAMPLE)  # fmt: skip

_ATTEMPT_EXAMPLE: dict[str, Any] = {"attempt": 1, "started_at": "2026-08-20T10:15:02.125Z", "status_code": 200,
                                    "error": None, "latency_ms": 84.2}  # fmt: skip
CALLBACK_LOG = _object("A task's callback delivery and every attempt to make it.", {
    "object": ({"const": "list"}, "Always `list`."),
    "task_id": ({"type": "string", "pattern": TASK_ID_PATTERN}, "The task."),
    "callback_url": ({"type": ["string", "null"]}, "Where the callback goes; null when the task has none."),
    "delivery": ({"anyOf": [{"$ref": REF + "CallbackDelivery"}, {"type": "null"}]},
                 "The delivery; null until the task has finished, or when it has no callback_url."),
    "data": ({"type": "array", "items": {"type": "object", "description": "One attempt: its number, when it "
                                                                          "started (ISO 8601 UTC), the HTTP status "
                                                                          "or error, the latency in ms (0.1 ms)."}},
             "The attempts, oldest first."),
}, ["object", "task_id", "data"], {"object": "list", "task_id": "task-unified-1757169743-8dxnm6yz",
                                  "callback_url": "https://your-domain.com/webhooks/video-task-completed",
                                  "delivery": None, "data": [_ATTEMPT_EXAMPLE]})  # fmt: skip


def objects() -> dict[str, Any]:
    """The answer objects as components, by name."""
    return {
        "Task": TASK,
        "TaskInfo": _TASK_INFO,
        "Usage": _USAGE,
        "ElementResult": _RESULT,
        "TaskError": _TASK_ERROR,
        "TaskList": list_of("Task", "Your tasks, newest first.", PENDING_TASK),
        "Error": ERROR,
        "ErrorFields": _ERROR_FIELDS,
        "ErrorDetail": _ERROR_DETAIL,
        "Element": ELEMENT,
        "ElementList": list_of("Element", "Your elements, newest first.", ELEMENT_EXAMPLE),
        "DeletedElement": DELETED_ELEMENT,
        "Model": MODEL,
        "ModelPrice": _PRICE_ROW,
        "ModelField": _FIELD_RULE,
        "ModelList": MODEL_LIST,
        "Credits": CREDITS,
        "CallbackLog": CALLBACK_LOG,
    }
