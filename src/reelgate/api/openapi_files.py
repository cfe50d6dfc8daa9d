"""The OpenAPI paths and schemas of the file API (api/files.py): EvoLink's upload documents (``upload-base64.json``,
``upload-url.json``, ``upload-stream.json``, ``quota.json``) with the list, delete and file routes beside them, for
api/openapi.py to merge into the document.

Refusals of the ``/api/v1/files`` routes are ``FileError`` (the contract's ``error`` object with EvoLink's
``success``/``code``/``msg`` beside it); ``GET /files/{name}`` refuses with the document's plain ``Error``.
"""

from __future__ import annotations

from typing import Any

_REF = "#/components/schemas/"
UPLOAD_TAGS = ["File Upload"]
MANAGE_TAGS = ["File Management"]
# A real 1x1 PNG: the examples are sent as they are (tests/fuzz runs them).
_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
# What media/uploads.py's check_upload_path and check_file_name take, both trimmed first: no `..` part of a path,
# and a name that is not `.` or `..` (spelled without lookahead, which JSON Schema's regexes need not support).
_PART = r"([A-Za-z0-9_-][A-Za-z0-9_.-]*|\.([A-Za-z0-9_-][A-Za-z0-9_.-]*)?|\.\.[A-Za-z0-9_.-]+)"
_UPLOAD_PATH = rf"^\s*/*{_PART}(/{_PART})*/*\s*$"
_SHOWN, _NOT_DOT, _ANY = r'[^\s\x00-\x1f\x7f/\\"]', r'[^.\s\x00-\x1f\x7f/\\"]', r'[^\x00-\x1f\x7f/\\"]'
_FILE_NAME = rf"^\s*({_NOT_DOT}|{_NOT_DOT}{_SHOWN}|\.{_NOT_DOT}|{_SHOWN}{_ANY}+{_SHOWN})\s*$"
_FILE_ID = {"type": "string", "pattern": "^file_[0-9a-f]{24}$", "description": "Unique file identifier."}
_NAME = "Kq3m9X0bTt2yLw8aJ5vN1cR7pZ4sE6hD-a42-e1767484800.png"
_URL = f"https://reelgate.example.com/files/{_NAME}"
_FILE_DATA = {
    "file_id": "file_3f9a0c1b2d4e5f60718293a4", "file_name": "avatar.png", "original_name": "avatar.png",
    "file_size": 204800, "mime_type": "image/png", "upload_path": "avatars", "file_url": _URL,
    "download_url": f"{_URL}?download=1", "upload_time": "2026-01-01T00:00:00+00:00",
    "expires_at": "2026-01-04T00:00:00+00:00",
}  # fmt: skip
_UPLOADED = {"success": True, "code": 200, "msg": "File uploaded successfully", "data": _FILE_DATA}
_LIST = {"success": True, "code": 200, "msg": "ok",
         "data": {"files": [_FILE_DATA], "total": 1, "page": 1, "pageSize": 20, "has_more": False}}  # fmt: skip
_DELETED = {"success": True, "code": 200, "msg": "File deleted successfully",
            "data": {"file_id": _FILE_DATA["file_id"], "deleted": True}}  # fmt: skip
_QUOTA = {"success": True, "code": 200,
          "data": {"user_group": "default", "used_files": 35, "max_files": 2000, "remain_files": 1965,
                   "is_custom": False, "quota_reason": ""}}  # fmt: skip
_ERRORS = {
    "400": ("The request or the file broke a rule (the message names it)", "unsupported_file_type",
            "invalid_request_error", "file must be a JPEG, PNG, GIF or WebP image, got text", "file"),
    "401": ("Missing or bad API key", "invalid_api_key", "authentication_error", "invalid API key", None),
    "404": ("No such file of this account (deleted, expired, another account's, or never uploaded)",
            "file_not_found", "not_found_error", "file 'file_3f9a0c1b2d4e5f60718293a4' not found (deleted, expired, "
            "or never uploaded by this account)", "file_id"),
    "413": ("The file is larger than the server keeps", "file_too_large", "request_too_large_error",
            "file is larger than 10 MB, the largest file this server keeps", "file"),
    "429": ("The account's file quota is full (`quota_exceeded`: Retry-After says when its oldest file expires), "
            "it has as many uploads in progress as it may (`too_many_concurrent_uploads`), or the key is rate "
            "limited", "quota_exceeded", "rate_limit_error", "this account keeps 2000 files, its quota of 2000; "
            "delete some (DELETE /api/v1/files/{file_id}) or wait until the oldest expires", None),
    "503": ("Unavailable (Retry-After says when to retry)", "service_unavailable", "service_unavailable_error",
            "the service is temporarily unavailable; retry shortly", None),
}  # fmt: skip
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
_RETENTION = ("Files expire after 72 hours (the operator's `REELGATE_FILE_RETENTION_HOURS`) and count against the "
              "account's file quota until then (default 2,000 files; `GET /api/v1/files/quota`); when it is full, "
              "uploads answer 429 `quota_exceeded`. Images only, judged by their content, not their name or "
              "declared type: JPEG, PNG, GIF or WebP, at most the server's image size (10 MB by default). The "
              "answer's `file_url` may be used as any image URL in a generation request of the same account: "
              "Reelgate reads it from its own storage.")  # fmt: skip


def _json(schema: str, example: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF + schema}, "example": example}}}


def _errors(*statuses: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in statuses:
        description, code, kind, message, param = _ERRORS[status]
        error: dict[str, Any] = {"code": code, "message": message, "type": kind}
        if param is not None:
            error["param"] = param
        example = {"success": False, "code": int(status), "msg": message, "error": error}
        out[status] = {"description": description, **_json("FileError", example)}
        if status in ("429", "503"):
            out[status]["headers"] = _RETRY_AFTER
    return out


def _string(description: str, example: str) -> dict[str, Any]:
    return {"type": "string", "description": description, "example": example}


def _names(path_example: str, name_example: str) -> dict[str, Any]:
    """The optional names, in either spelling: the camelCase one is read only when the other is absent or null."""
    path_words = (
        "Custom upload path, shown back as `upload_path` (letters, digits, `_`, `-`, `.` in `/`-separated "
        "parts, at most 128 characters); default `images`."
    )
    name_words = (
        "Custom file name, shown back as `file_name` and sent in Content-Disposition (at most 255 "
        "characters, no `/`, `\\`, quotes or control characters); default `<file_id>.<ext>`."
    )
    return {
        "upload_path": {**_string(path_words, path_example), "type": ["string", "null"], "pattern": _UPLOAD_PATH,
                        "maxLength": 128},
        "file_name": {**_string(name_words, name_example), "type": ["string", "null"], "pattern": _FILE_NAME,
                      "maxLength": 255},
        "uploadPath": {"description": "camelCase spelling of upload_path, read when upload_path is absent or null."},
        "fileName": {"description": "camelCase spelling of file_name, read when file_name is absent or null."},
    }  # fmt: skip


def _naming_rules() -> list[dict[str, Any]]:
    """Each camelCase spelling meets its rule when it is the one read."""
    return [
        {"if": {"properties": {ours: {"type": "string"}}, "required": [ours]},
         "else": {"properties": {camel: {"type": ["string", "null"], "pattern": pattern, "maxLength": longest}}}}
        for ours, camel, pattern, longest in (("upload_path", "uploadPath", _UPLOAD_PATH, 128),
                                              ("file_name", "fileName", _FILE_NAME, 255))
    ]  # fmt: skip


def file_schemas() -> dict[str, Any]:
    """Components: the three upload requests, FileData and the answers that carry it, the quota, FileError."""
    file_data_properties = {
        "file_id": _FILE_ID,
        "file_name": {"type": "string", "description": "Stored file name."},
        "original_name": {"type": "string", "description": "The name it was uploaded with (the form's file "
                                                            "name, the URL's last part, or file_name)."},
        "file_size": {"type": "integer", "minimum": 1, "description": "File size (bytes)."},
        "mime_type": {"enum": ["image/jpeg", "image/png", "image/gif", "image/webp"],
                      "description": "The MIME type its content shows."},
        "upload_path": {"type": "string", "description": "File storage path."},
        "file_url": {"type": "string", "format": "uri", "description": "File access URL: a capability URL, "
                     "readable without a key by whoever holds it until the file expires or is deleted."},
        "download_url": {"type": "string", "format": "uri",
                         "description": "The same file sent as an attachment."},
        "upload_time": {"type": "string", "format": "date-time", "description": "Upload time (ISO 8601)."},
        "expires_at": {"type": "string", "format": "date-time", "description": "Expiry time (ISO 8601)."},
    }  # fmt: skip
    return {
        "Base64UploadRequest": {
            "type": "object", "required": ["base64_data"], "description": "An image sent as Base64 in a JSON body.",
            "examples": [{"base64_data": _PNG, "upload_path": "avatars", "file_name": "avatar.png"}],
            "properties": {"base64_data": {**_string("The image as a data URL (`data:image/png;base64,...`) or "
                                                     "bare Base64; one image per request.", _PNG),
                                           "minLength": 1, "pattern": "\\S"},
                           **_names("avatars", "avatar.png")},
            "allOf": _naming_rules(),
        },
        "UrlUploadRequest": {
            "type": "object", "required": ["file_url"], "description": "An image Reelgate downloads from a URL.",
            "examples": [{"file_url": "https://example.com/image.jpg", "upload_path": "downloads"}],
            "properties": {"file_url": {**_string("A public http(s) URL of the image; Reelgate downloads it with "
                                                  "the same limits and address rules as generation media (no "
                                                  "private, loopback or link-local address, at most 5 redirects).",
                                                  "https://example.com/image.jpg"), "format": "uri",
                                        "maxLength": 2048},
                           **_names("downloads", "downloaded.jpg")},
            "allOf": _naming_rules(),
        },
        "StreamUploadRequest": {
            "type": "object", "required": ["file"], "description": "An image sent as a multipart/form-data file.",
            "examples": [{"file": "<the image's bytes>", "upload_path": "photos", "file_name": "photo.png"}],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "The image's bytes; one file per request."},
                           **_names("photos", "photo.png")},
            # api/multipart.py reads at most 8 text fields of at most 4096 bytes each (other fields are ignored); a
            # JSON Schema counts characters, so 4096 of them is the bound that never refuses a form the server takes.
            "maxProperties": 9, "additionalProperties": {"type": "string", "maxLength": 4096},
            "allOf": _naming_rules(),
        },
        "FileData": {"type": "object", "required": list(file_data_properties), "description": "An uploaded file.",
                     "properties": file_data_properties, "examples": [_FILE_DATA]},
        "FileUploadResponse": _wrapped("FileData", "File uploaded successfully", _UPLOADED, "The uploaded file."),
        "FileList": _wrapped("FileListData", "ok", _LIST, "A page of the account's files."),
        "FileListData": {
            "type": "object", "required": ["files", "total", "page", "pageSize", "has_more"],
            "description": "A page of files.", "examples": [_LIST["data"]],
            "properties": {"files": {"type": "array", "items": {"$ref": _REF + "FileData"},
                                     "description": "The account's live files, newest first."},
                           "total": {"type": "integer", "minimum": 0, "description": "Live files in all."},
                           "page": {"type": "integer", "minimum": 1, "description": "This page's number."},
                           "pageSize": {"type": "integer", "minimum": 1, "description": "Files per page."},
                           "has_more": {"type": "boolean", "description": "Whether a later page has files."}},
        },
        "FileDeleted": _wrapped("FileDeletedData", "File deleted successfully", _DELETED, "The file is deleted."),
        "FileDeletedData": {"type": "object", "required": ["file_id", "deleted"], "description": "What was deleted.",
                            "examples": [_DELETED["data"]],
                            "properties": {"file_id": _FILE_ID,
                                           "deleted": {"const": True, "description": "Always true."}}},
        "QuotaResponse": {
            "type": "object", "required": ["success", "code", "data"], "description": "The account's file quota.",
            "properties": {"success": {"const": True, "description": "Always true."},
                           "code": {"const": 200, "description": "Always 200."},
                           "data": {"$ref": _REF + "QuotaData", "description": "The quota."}},
            "examples": [_QUOTA],
        },
        "QuotaData": {
            "type": "object",
            "required": ["user_group", "used_files", "max_files", "remain_files", "is_custom", "quota_reason"],
            "description": "How many files the account keeps and may keep.", "examples": [_QUOTA["data"]],
            "properties": {
                "user_group": {"type": "string", "description": "The account's user group."},
                "used_files": {"type": "integer", "minimum": 0, "description": "Files stored now (not expired)."},
                "max_files": {"type": "integer", "minimum": 1, "description": "The quota (REELGATE_FILE_QUOTA)."},
                "remain_files": {"type": "integer", "minimum": 0, "description": "Uploads left before it is full."},
                "is_custom": {"type": "boolean", "description": "Always false: one quota for every account."},
                "quota_reason": {"type": "string", "description": "Always empty (no custom quotas)."},
            },
        },
        "FileError": {
            "description": "A refusal: the document's Error body with EvoLink's wrapper beside it.",
            "examples": [{"success": False, "code": 404, "msg": _ERRORS["404"][3],
                          "error": {"code": "file_not_found", "message": _ERRORS["404"][3], "type": "not_found_error",
                                    "param": "file_id"}}],
            "allOf": [{"$ref": _REF + "Error"}, {
                "type": "object", "required": ["success", "code", "msg"],
                "properties": {"success": {"const": False}, "code": {"type": "integer", "description": "HTTP status."},
                               "msg": {"type": "string", "description": "The same as error.message."}},
            }],
        },
    }  # fmt: skip


def _wrapped(data: str, msg: str, example: dict[str, Any], words: str) -> dict[str, Any]:
    return {
        "type": "object", "required": ["success", "code", "msg", "data"], "description": f"EvoLink's wrapper: {words}",
        "properties": {"success": {"const": True, "description": "Always true."},
                       "code": {"const": 200, "description": "Always 200."},
                       "msg": {"type": "string", "example": msg, "description": "A short status message."},
                       "data": {"$ref": _REF + data, "description": words}},
        "examples": [example],
    }  # fmt: skip


def _json_body(schema: str, example: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF + schema}, "example": example}}


def _upload(op_id: str, summary: str, how: str, content: dict[str, Any], *statuses: str) -> dict[str, Any]:
    return {"post": {
        "operationId": op_id, "tags": UPLOAD_TAGS, "summary": summary, "description": f"{how}\n\n{_RETENTION}",
        "requestBody": {"required": True, "content": content},
        "responses": {"200": {"description": "File uploaded successfully", **_json("FileUploadResponse", _UPLOADED)},
                      **_errors(*statuses)},
    }}  # fmt: skip


def file_paths() -> dict[str, Any]:
    """Paths: the three uploads, list, delete and quota under /api/v1/files, and the files themselves."""
    page_size = {"name": "pageSize", "in": "query", "description": "Files per page (1-100; `page_size` is also "
                 "read).", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}  # fmt: skip
    return {
        "/api/v1/files/upload/base64": _upload(
            "uploadFileBase64", "Base64 file upload",
            "Upload an image sent as Base64 (a data URL or bare Base64) in a JSON body.",
            _json_body("Base64UploadRequest", {"base64_data": _PNG}),
            "400", "401", "413", "429", "503"),
        "/api/v1/files/upload/url": _upload(
            "uploadFileUrl", "URL file upload", "Upload an image Reelgate downloads from a public URL.",
            _json_body("UrlUploadRequest", {"file_url": "https://example.com/image.jpg"}),
            "400", "401", "429", "503"),
        "/api/v1/files/upload/stream": _upload(
            "uploadFileStream", "File stream upload",
            "Upload a local image as multipart/form-data field `file` (`curl -F file=@photo.png`); the optional "
            "fields take underscore or camelCase names. The file is written to storage as it arrives.",
            {"multipart/form-data": {"schema": {"$ref": _REF + "StreamUploadRequest"}}},
            "400", "401", "413", "429", "503"),
        "/api/v1/files/list": {"get": {
            "operationId": "listFiles", "tags": MANAGE_TAGS, "summary": "List files",
            "description": "The account's live files (not expired, not deleted), newest first, a page at a time.",
            "parameters": [{"name": "page", "in": "query", "description": "Page number, from 1.",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1}},
                           page_size],
            "responses": {"200": {"description": "One page of files", **_json("FileList", _LIST)},
                          **_errors("400", "401", "429", "503")},
        }},
        "/api/v1/files/quota": {"get": {
            "operationId": "getFilesQuota", "tags": MANAGE_TAGS, "summary": "Get file quota",
            "description": "How many files the account stores now and how many more it may upload.",
            "responses": {"200": {"description": "The quota", **_json("QuotaResponse", _QUOTA)},
                          **_errors("401", "429", "503")},
        }},
        "/api/v1/files/{file_id}": {"delete": {
            "operationId": "deleteFile", "tags": MANAGE_TAGS, "summary": "Delete a file",
            "description": "Deletes one of the account's files at once: its URL answers 404 from then on, and a "
                           "generation request naming it fails. Elements already made from it keep their own "
                           "copies. Another account's file answers 404, as an unknown one.",
            "parameters": [{"name": "file_id", "in": "path", "required": True, "schema": {"type": "string"},
                            "example": _FILE_DATA["file_id"], "description": "The file's `file_id`."}],
            "responses": {"200": {"description": "Deleted", **_json("FileDeleted", _DELETED)},
                          **_errors("401", "404", "429", "503")},
        }},
        "/files/{name}": {"get": {
            "operationId": "getFile", "tags": MANAGE_TAGS, "security": [], "summary": "Read a file",
            "description": "An uploaded file, by its `file_url`: a capability URL, readable without a key by "
                           "whoever holds it until the file expires or is deleted. One byte range (`Range`), "
                           "`ETag`/`If-None-Match`; `?download=1` sends it as an attachment.",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                            "example": _NAME, "description": "The last part of the file's `file_url`."},
                           {"name": "download", "in": "query", "schema": {"type": "string"},
                            "description": "Present: Content-Disposition attachment."}],
            "responses": {
                "200": {"description": "The file", "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                                              for t in ("image/jpeg", "image/png", "image/gif",
                                                                        "image/webp")}},
                "206": {"description": "The requested byte range"},
                "304": {"description": "Not modified (If-None-Match)"},
                "404": {"description": "No such file (expired or deleted)",
                        "content": {"application/json": {"schema": {"$ref": _REF + "Error"}}}},
                "416": {"description": "The range starts beyond the end of the file",
                        "content": {"application/json": {"schema": {"$ref": _REF + "Error"}}}},
            },
        }},
    }  # fmt: skip
