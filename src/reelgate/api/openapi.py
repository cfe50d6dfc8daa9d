"""The OpenAPI 3.1 document: every operation with its summary, description and tag, the request schema of every
model (from its params model, catalog/*/schema.py), the answer objects (openapi_objects.py) and the callback.

The webhook self-service routes and the task list's ``error_code`` filter document themselves in
openapi_webhooks.py, the file API in openapi_files.py; both are merged here. The document is the contract a client
reads and what schemathesis holds the server to (tests/fuzz): every rule the server checks that a JSON Schema can
state is in it, and every status an operation answers is listed.
"""

from __future__ import annotations

import copy
from typing import Any

from reelgate import __version__
from reelgate.api.openapi_files import file_paths, file_schemas
from reelgate.api.openapi_objects import ELEMENT_ID_PATTERN, PENDING_TASK, REF, TASK_ID_PATTERN, objects
from reelgate.api.openapi_webhooks import task_list_error_code_parameter, webhook_paths, webhook_schemas
from reelgate.catalog import ModelSpec
from reelgate.catalog.video.schema import CALLBACK_URL  # the one callback_url every model's request shares
from reelgate.domain import STATUSES

_ERRORS = {
    "400": "Invalid request: the body says which field (`param`) and why.",
    "401": "Missing, malformed, unknown, revoked or expired API key.",
    "402": "Not enough credits to reserve the task's price; nothing was created.",
    "403": "Your key's group may not use this model.",
    "404": "No such task or element in your account (another account's ids answer the same).",
    "409": "Conflict: see `code`.",
    "413": "The body is larger than this deployment's limit.",
    "429": "Rate limited: retry after `Retry-After` seconds.",
    "503": "Shutting down or the database is unavailable: retry shortly.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}}
TAGS = [
    {"name": "Tasks", "description": "Submit generation tasks, follow them, cancel them, read their callbacks."},
    {"name": "Elements", "description": "The subject elements kling-custom-element tasks made for your account."},
    {"name": "Models", "description": "The model catalogue: prices and the rules of each model's request."},
    {"name": "Account", "description": "Your credits."},
    {"name": "Webhooks", "description": "Your callbacks' signing secret and their deliveries."},
    {
        "name": "File Upload",
        "description": "Upload images (Base64, URL or multipart) to use as image URLs in "
        "generation requests; they expire after 72 hours by default.",
    },
    {"name": "File Management", "description": "List and delete your uploaded files, read your file quota."},
    {"name": "System", "description": "Liveness and readiness, without an API key."},
]


def _json(schema: str, **extra: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": REF + schema}, **extra}}}


def _responses(ok: str, ok_words: str, *errors: str, auth: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": ok_words, **_json(ok)}}
    for code in (*(("401", "429") if auth else ()), "503", *errors):
        out[code] = {"description": _ERRORS[code], **_json("Error")}
        if code in ("429", "503"):
            out[code]["headers"] = copy.deepcopy(_RETRY_AFTER)
    return dict(sorted(out.items()))


def _operation(op_id: str, tag: str, summary: str, description: str, responses: dict[str, Any],
               parameters: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    op: dict[str, Any] = {"operationId": op_id, "tags": [tag], "summary": summary, "description": description}
    if parameters:
        op["parameters"] = parameters
    return {**op, **extra, "responses": responses}


def _path_param(name: str, pattern: str, words: str, example: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": words, "example": example,
            "schema": {"type": "string", "pattern": pattern}}  # fmt: skip


_TASK_ID = _path_param("task_id", "^task-unified-", "The task id (a value not starting with `task-unified-` "
                       "answers 400 `invalid_task_id`).", PENDING_TASK["id"])  # fmt: skip
_ELEMENT_ID = _path_param("element_id", ELEMENT_ID_PATTERN, "The element id.", "1873962536493486080")


def _paging(after: str, after_words: str) -> list[dict[str, Any]]:
    return [
        {"name": "limit", "in": "query", "description": "Items per page, 1-100 (default 20).",
         "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
        {"name": "after", "in": "query", "description": after_words, "schema": {"type": "string", "pattern": after}},
    ]  # fmt: skip


def _task_paths(models: list[str]) -> dict[str, Any]:
    links = {
        "GetTask": {"operationId": "getTask", "parameters": {"task_id": "$response.body#/id"},
                    "description": "Poll the task."},
        "CancelTask": {"operationId": "cancelTask", "parameters": {"task_id": "$response.body#/id"},
                       "description": "Cancel the task."},
        "GetTaskCallbacks": {"operationId": "getTaskCallbacks", "parameters": {"task_id": "$response.body#/id"},
                             "description": "Read the task's callback deliveries."},
    }  # fmt: skip
    submitted = _responses("Task", "The task, `pending`.", "400", "402", "403", "409", "413")
    submitted["200"]["links"] = links
    idempotency = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "minLength": 1,
                   "maxLength": 255}, "description": "Send the same key again (with the same body) to get the "
                   "original task back instead of a second one; another body with a used key answers 409. Kept at "
                   "least 24 hours, per API key."}  # fmt: skip
    return {
        "/v1/videos/generations": {"post": _operation(
            "createTask", "Tasks", "Submit a generation task",
            "Validates the request, reserves the model's price from your credits and answers the `pending` task "
            "at once; the work runs in the background. Poll `GET /v1/tasks/{task_id}` or give a `callback_url`. "
            "Every problem is reported with its field's dotted path; unknown fields are ignored.",
            submitted, [idempotency], requestBody={"required": True, **_json("SubmitRequest")})},
        "/v1/tasks": {"get": _operation(
            "listTasks", "Tasks", "List your tasks",
            "Your account's tasks, newest first, a page at a time.",
            _responses("TaskList", "A page of tasks.", "400"),
            [*_paging(TASK_ID_PATTERN, "A task id: the `last_id` of the previous page."),
             {"name": "status", "in": "query", "description": "Only tasks with this status.",
              "schema": {"enum": list(STATUSES)}},
             {"name": "model", "in": "query", "description": "Only tasks of this model.", "schema": {"enum": models}},
             task_list_error_code_parameter()])},
        "/v1/tasks/{task_id}": {"get": _operation(
            "getTask", "Tasks", "Retrieve a task",
            "The task as it is now: poll this until `status` is `completed` or `failed`.",
            _responses("Task", "The task.", "400", "404"), [_TASK_ID])},
        "/v1/tasks/{task_id}/cancel": {"post": _operation(
            "cancelTask", "Tasks", "Cancel a task",
            "Cancels the task while `task_info.can_cancel` is true: it becomes `failed` with `request_cancelled`, "
            "its reservation is released and its callback fires. Cancelling a cancelled task answers it again; a "
            "task that ended otherwise answers 409 `task_not_cancellable`.",
            _responses("Task", "The cancelled task.", "400", "404", "409"), [_TASK_ID])},
        "/v1/tasks/{task_id}/callbacks": {"get": _operation(
            "getTaskCallbacks", "Tasks", "Read a task's callback deliveries",
            "The delivery of the task's callback and every attempt: when, the HTTP status or error, the latency.",
            _responses("CallbackLog", "The delivery log.", "400", "404"), [_TASK_ID])},
    }  # fmt: skip


def _other_paths() -> dict[str, Any]:
    return {
        "/v1/elements": {"get": _operation(
            "listElements", "Elements", "List your elements",
            "The elements your kling-custom-element tasks made, newest first, a page at a time.",
            _responses("ElementList", "A page of elements.", "400"),
            _paging(ELEMENT_ID_PATTERN, "An element id: the `last_id` of the previous page."))},
        "/v1/elements/{element_id}": {
            "get": _operation("getElement", "Elements", "Retrieve an element", "One of your elements.",
                              _responses("Element", "The element.", "404"), [_ELEMENT_ID]),
            "delete": _operation("deleteElement", "Elements", "Delete an element",
                                 "Deletes the element (upstream too, where a provider holds it) and its stored "
                                 "media; it can no longer be used by video tasks.",
                                 _responses("DeletedElement", "The element is deleted.", "404"), [_ELEMENT_ID]),
        },
        "/v1/models": {"get": _operation(
            "listModels", "Models", "List the models",
            "Every model with its billing rule, your group's prices, whether this deployment serves it, and the "
            "rules of every field of its request (`request_schema`, flattened as `fields`).",
            _responses("ModelList", "The catalogue."))},
        "/v1/credits": {"get": _operation(
            "getCredits", "Account", "Read your credits",
            "The calling key's and its account's remaining and used credits, in EvoLink's shape.",
            _responses("Credits", "The credits."))},
        "/healthz": {"get": _operation(
            "getHealth", "System", "Liveness", "Answers while the process is up.",
            {"200": {"description": "Up.", **_json("Health")}}, security=[])},
        "/readyz": {"get": _operation(
            "getReadiness", "System", "Readiness",
            "Answers 200 when the process can serve requests (its database answers), 503 when it cannot.",
            _responses("Readiness", "Ready.", auth=False), security=[])},
    }  # fmt: skip


def _system_objects() -> dict[str, Any]:
    health = {"type": "object", "description": "The process is up.", "required": ["status"],
              "properties": {"status": {"const": "ok", "description": "Always `ok`."}},
              "examples": [{"status": "ok"}]}  # fmt: skip
    ready = {"type": "object", "description": "The process can serve requests.",
             "required": ["status", "database", "db_ping_ms", "rate_limiter"],
             "properties": {"status": {"const": "ready", "description": "Always `ready`."},
                            "database": {"type": "string", "description": "The database engine."},
                            "db_ping_ms": {"type": "number", "description": "A database round trip, in ms."},
                            "rate_limiter": {"type": "object", "required": ["store", "status"],
                                             "description": "Where the rate limiter keeps its buckets (`local` or "
                                                            "`redis`) and whether that store answers (a Redis outage "
                                                            "leaves the process ready: the limiter falls back to "
                                                            "per-process buckets).",
                                             "properties": {
                                                 "store": {"type": "string", "description": "`local` or `redis`."},
                                                 "status": {"type": "string", "description": "`ok` or `degraded`."}}}},
             "examples": [{"status": "ready", "database": "postgresql", "db_ping_ms": 0.41,
                           "rate_limiter": {"store": "local", "status": "ok"}}]}  # fmt: skip
    return {"Health": health, "Readiness": ready}


def model_request(spec: ModelSpec, ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """One model's whole request body and the components it refers to (``ref`` + name): a model that reads the
    whole body is its params schema; another takes its params in ``model_params``."""
    params, defs = spec.json_schema(ref)
    if spec.reads_body:
        params.setdefault("description", spec.description)
        return params, defs
    defs[spec.params.__name__] = params
    body: dict[str, Any] = {
        "type": "object",
        "description": f"A {spec.name} request: {spec.description}",
        "required": ["model", "model_params"],
        "properties": {
            "model": {"const": spec.name, "description": "The model's id."},
            "model_params": {"$ref": ref + spec.params.__name__, "description": "The model's parameters."},
            "callback_url": copy.deepcopy(CALLBACK_URL),
        },
        "examples": [{"model": spec.name, "model_params": example} for example in params.get("examples", [])],
    }
    return body, defs


def request_name(spec: ModelSpec) -> str:
    """The component name of a model's whole request."""
    return spec.params.__name__ if spec.reads_body else spec.params.__name__.removesuffix("Params") + "Request"


def _requests(catalog: dict[str, ModelSpec]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Every model's request as a component, the submit body that is exactly one of them (by ``model``), and the
    named examples of the submit body (the vendor page's own first)."""
    components: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    examples: dict[str, Any] = {}
    for spec in catalog.values():
        body, defs = model_request(spec, REF)
        name = request_name(spec)
        components.update({**defs, name: body})
        mapping[spec.name] = REF + name
        for n, example in enumerate(body.get("examples", [])):
            key = spec.name if n == 0 else f"{spec.name}-{n + 1}"
            examples[key] = {"summary": _example_summary(spec, example), "value": example}
    submit = {
        "type": "object",
        "description": "A generation request: `model` picks the model, whose request schema applies.",
        "required": ["model"],
        "properties": {"model": {"enum": list(mapping), "description": "The model's id (GET /v1/models)."}},
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "model", "mapping": mapping},
        "examples": [example["value"] for example in examples.values()],
    }
    return components, submit, examples


def _example_summary(spec: ModelSpec, example: dict[str, Any]) -> str:
    kind = example.get("model_params", {}).get("reference_type")
    if kind == "image_refer":
        return f"{spec.name}: from images (the vendor page's example)"
    if kind:
        return f"{spec.name}: from a video"
    return f"{spec.name}: {spec.description}"


def _callback_webhook() -> dict[str, Any]:
    headers = {
        "webhook-id": "The delivery's id, the same on every retry of it (deduplicate on it).",
        "webhook-timestamp": "When the attempt was signed, in Unix seconds (refuse old ones).",
        "webhook-signature": "`v1,<Base64 HMAC-SHA256 of \"{webhook-id}.{webhook-timestamp}.{body}\">` with your "
                             "account's signing secret (Standard Webhooks).",
    }  # fmt: skip
    return {"post": {
        "operationId": "taskFinished", "tags": ["Webhooks"], "summary": "A task finished (your callback_url)",
        "description": "Sent to a task's `callback_url` once it is completed or failed (cancelled included), after "
                       "its billing is settled: the body is the task as `GET /v1/tasks/{task_id}` answers it then. "
                       "Answer 2xx within 10 s; otherwise it is retried 1, 2 and 4 s later (4 attempts at most). "
                       "Redirects are not followed.",
        "parameters": [{"name": name, "in": "header", "required": True, "description": words,
                        "schema": {"type": "string"}} for name, words in headers.items()],
        "requestBody": {"required": True, **_json("Task")},
        "responses": {"2XX": {"description": "Received; any other answer (or none in 10 s) is retried."}},
    }}  # fmt: skip


def openapi_document(catalog: dict[str, ModelSpec]) -> dict[str, Any]:
    requests, submit, examples = _requests(catalog)
    paths = {**_task_paths(list(catalog)), **_other_paths()}
    body = paths["/v1/videos/generations"]["post"]["requestBody"]["content"]["application/json"]
    body["examples"] = examples
    for path, operations in [*webhook_paths().items(), *file_paths().items()]:
        paths.setdefault(path, {}).update(operations)
    schemas = {
        **requests,
        "SubmitRequest": submit,
        **objects(),
        **_system_objects(),
        **webhook_schemas(),
        **file_schemas(),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Reelgate", "version": __version__,
            "summary": "EvoLink-compatible asynchronous video generation.",
            "description": "A self-hosted gateway for EvoLink's asynchronous generation API: kling-custom-element "
                           "turns images or a video into a reusable subject element, and the Kling video models use "
                           "those elements. A client written for EvoLink works by changing only the base URL and "
                           "the key. Every `/v1` route needs `Authorization: Bearer <API key>`.",
        },
        "tags": TAGS,
        "security": [{"bearer": []}],
        "paths": paths,
        "webhooks": {"taskFinished": _callback_webhook()},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "An API key (`reelgate keys create`), shown once."}},
        },
    }  # fmt: skip
