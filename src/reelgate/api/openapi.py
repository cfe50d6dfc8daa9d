"""The OpenAPI 3.1 document, built from the pydantic params models and the contract's task object."""

from __future__ import annotations

from typing import Any

from reelgate import __version__
from reelgate.catalog import ModelSpec
from reelgate.domain import STATUSES, TASK_ERROR_CODES

_REF = "#/components/schemas/"
_ERROR_STATUSES = {
    "400": "Invalid request", "401": "Missing or bad API key", "402": "Not enough credits",
    "403": "Not allowed", "404": "Not found", "409": "Conflict", "413": "Body too large",
    "429": "Rate limited", "503": "Unavailable",
}  # fmt: skip

_TASK = {
    "type": "object",
    "required": ["created", "id", "model", "object", "progress", "status", "task_info", "type", "usage"],
    "properties": {
        "created": {"type": "integer"},
        "id": {"type": "string", "pattern": "^task-unified-[0-9]+-[a-z0-9]{8}$"},  # what we issue
        "model": {"type": "string"},
        "object": {"const": "video.generation.task"},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "status": {"enum": list(STATUSES)},
        "task_info": {
            "type": "object",
            "required": ["can_cancel", "estimated_time"],
            "properties": {"can_cancel": {"type": "boolean"}, "estimated_time": {"type": "integer", "minimum": 0}},
        },
        "type": {"const": "video"},
        "usage": {
            "type": "object",
            "required": ["billing_rule", "credits_reserved", "user_group"],
            "properties": {
                "billing_rule": {"type": "string"},
                "credits_reserved": {"type": "number"},
                "credits_charged": {"type": "number"},
                "user_group": {"type": "string"},
            },
        },
        "result_data": {"type": "object", "properties": {"element_id": {"type": "string", "pattern": "^[0-9]+$"}}},
        "results": {"type": "array", "items": {"type": "string"}},  # the video models' media URLs (contract §9)
        "error": {
            "type": "object",
            "required": ["code", "message", "type"],
            "properties": {
                "code": {"enum": sorted(TASK_ERROR_CODES)},
                "message": {"type": "string"},
                "type": {"const": "task_error"},
            },  # fmt: skip
        },
    },
}
_AMOUNT = {"type": "number", "minimum": 0}
_CREDITS = {  # EvoLink's get-credits.json: the calling key's view and the account's
    "type": "object", "required": ["success", "message", "data"],
    "properties": {"success": {"const": True}, "message": {"type": "string"}, "data": {
        "type": "object", "required": ["token", "user"],
        "properties": {
            "token": {"type": "object", "required": ["remaining_credits", "unlimited_credits", "used_credits"],
                      "properties": {"remaining_credits": _AMOUNT, "unlimited_credits": {"type": "boolean"},
                                     "used_credits": _AMOUNT}},
            "user": {"type": "object", "required": ["remaining_credits", "used_credits"],
                     "properties": {"remaining_credits": _AMOUNT, "used_credits": _AMOUNT}},
        }}},
}  # fmt: skip
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "type"],
            "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "type": {"type": "string"},
                "param": {"type": "string"}, "fallback_suggestion": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}  # fmt: skip


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF + schema}}}}


def _responses(ok: str, *errors: str) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "OK", **_json(ok)}}
    for code in ("401", "429", "503", *errors):
        out[code] = {"description": _ERROR_STATUSES[code], **_json("Error")}
    return out


def _list_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["object", "data", "has_more"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": {"$ref": _REF + item}},
            "has_more": {"type": "boolean"},
            "last_id": {"type": ["string", "null"]},
        },
    }


def _task_id_param() -> list[dict[str, Any]]:
    pattern = "^task-unified-"
    return [{"name": "task_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": pattern}}]


def _paths() -> dict[str, Any]:
    task_links = {
        "GetTask": {"operationId": "getTask", "parameters": {"task_id": "$response.body#/id"}},
        "CancelTask": {"operationId": "cancelTask", "parameters": {"task_id": "$response.body#/id"}},
    }
    submit_ok = _responses("Task", "400", "402", "403", "409", "413")
    submit_ok["200"]["links"] = task_links
    element_param = [{"name": "element_id", "in": "path", "required": True,
                      "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"}}]  # fmt: skip
    paging = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
        {"name": "after", "in": "query", "schema": {"type": "string"}},
    ]
    return {
        "/v1/videos/generations": {"post": {
            "operationId": "createTask", "summary": "Submit a generation task",
            "requestBody": {"required": True, **_json("SubmitRequest")}, "responses": submit_ok,
            "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 255}}],
        }},
        "/v1/tasks": {"get": {"operationId": "listTasks", "parameters": [
            *paging, {"name": "status", "in": "query", "schema": {"enum": list(STATUSES)}},
            {"name": "model", "in": "query", "schema": {"type": "string"}}],
            "responses": _responses("TaskList", "400")}},
        "/v1/tasks/{task_id}": {"get": {"operationId": "getTask", "parameters": _task_id_param(),
                                        "responses": _responses("Task", "400", "404")}},
        "/v1/tasks/{task_id}/cancel": {"post": {"operationId": "cancelTask", "parameters": _task_id_param(),
                                                "responses": _responses("Task", "400", "404", "409")}},
        "/v1/tasks/{task_id}/callbacks": {"get": {"operationId": "getTaskCallbacks", "parameters": _task_id_param(),
                                                  "responses": _responses("CallbackLog", "400", "404")}},
        "/v1/elements": {"get": {"operationId": "listElements", "parameters": paging,
                                 "responses": _responses("ElementList", "400")}},
        "/v1/elements/{element_id}": {
            "get": {"operationId": "getElement", "parameters": element_param,
                    "responses": _responses("Element", "404")},
            "delete": {"operationId": "deleteElement", "parameters": element_param,
                       "responses": _responses("DeletedElement", "404")},
        },
        "/v1/models": {"get": {"operationId": "listModels", "responses": _responses("ModelList")}},
        "/v1/credits": {"get": {"operationId": "getCredits", "responses": _responses("Credits")}},
    }  # fmt: skip


def _requests(catalog: dict[str, ModelSpec]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each model's params schema as a component, and the request schema that refers to them: the models whose
    fields sit in ``model_params`` share one envelope; a model that reads the whole body is its own request."""
    components: dict[str, Any] = {}
    refs: list[dict[str, Any]] = []
    enveloped: list[str] = []
    bodies: list[dict[str, Any]] = []
    for spec in catalog.values():
        params, defs = spec.json_schema(_REF)
        components.update({**defs, spec.params.__name__: params})
        ref = {"$ref": _REF + spec.params.__name__}
        if spec.reads_body:
            bodies.append(ref)
        else:
            refs.append(ref)
            enveloped.append(spec.name)
    envelope = {
        "type": "object",
        "required": ["model", "model_params"],
        "properties": {
            "model": {"enum": sorted(enveloped)},
            "model_params": refs[0] if len(refs) == 1 else {"oneOf": refs},
            "callback_url": {"type": "string", "pattern": "^https://[^/?#@\\s]+", "maxLength": 2048},
        },
    }
    if not bodies:
        return components, envelope
    components["ModelParamsRequest"] = envelope
    return components, {"oneOf": [{"$ref": _REF + "ModelParamsRequest"}, *bodies]}


def _schemas(catalog: dict[str, ModelSpec]) -> dict[str, Any]:
    components, request = _requests(catalog)
    return {
        **components,
        "SubmitRequest": request,
        "Task": _TASK,
        "TaskList": _list_of("Task"),
        "Error": _ERROR,
        "Element": {"type": "object", "required": ["id", "object"],
                    "properties": {"id": {"type": "string"}, "object": {"const": "element"}}},
        "ElementList": _list_of("Element"),
        "DeletedElement": {"type": "object", "required": ["id", "deleted"],
                           "properties": {"id": {"type": "string"}, "deleted": {"type": "boolean"}}},
        "ModelList": {"type": "object", "required": ["object", "data"],
                      "properties": {"object": {"const": "list"},
                                     "data": {"type": "array", "items": {"type": "object"}}}},
        "Credits": _CREDITS,
        "CallbackLog": {"type": "object", "required": ["object", "task_id", "data"],
                        "properties": {"object": {"const": "list"}, "task_id": {"type": "string"},
                                       "data": {"type": "array", "items": {"type": "object"}}}},
    }  # fmt: skip


def openapi_document(catalog: dict[str, ModelSpec]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Reelgate", "version": __version__,
                 "description": "EvoLink-compatible asynchronous generation API (kling-custom-element and the "
                                "Kling video models that use its elements)."},
        "components": {"schemas": _schemas(catalog),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": _paths(),
    }  # fmt: skip


DOCS_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Reelgate API</title></head>
<body><h1>Reelgate API</h1><p>The machine-readable document is at <a href="/openapi.json">/openapi.json</a>.
Load it into any OpenAPI viewer (no assets are fetched from the internet by this page).</p></body></html>"""
