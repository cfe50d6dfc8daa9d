"""The file API's request fields: names and paths checked, a Base64 body decoded and its image identified.

``decode_base64_body`` is a module-level function of plain arguments, so the media pool's processes can run it: a
10 MB image is about 14 MB of JSON, whose parsing and decoding would otherwise hold the API process's GIL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from reelgate.bodies import json_object
from reelgate.errors import InvalidRequest, RequestTooLarge
from reelgate.media.fetch import decode_inline
from reelgate.media.image_type import HEADER_BYTES, ImageType, identify_image
from reelgate.media.images import size_text

MAX_FILE_NAME = 255
MAX_UPLOAD_PATH = 128
DEFAULT_UPLOAD_PATH = "images"  # what the vendor calls "categorised by file type": every file here is an image
# A file name is shown and sent back in Content-Disposition: no path separators, quotes or control characters.
_BAD_NAME = re.compile(r'[\x00-\x1f\x7f/\\"]')
_PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
# The fields the vendor documents, in both spellings its stream upload accepts.
NAME_FIELDS = {"file_name": "file_name", "fileName": "file_name", "upload_path": "upload_path",
               "uploadPath": "upload_path"}  # fmt: skip


@dataclass(frozen=True)
class Naming:
    """What the caller asked the file to be called, checked; None where it left the choice to the server."""

    file_name: str | None = None
    upload_path: str | None = None


@dataclass(frozen=True)
class DecodedUpload:
    """A Base64 upload decoded: the bytes, what image they are, and the names asked for."""

    data: bytes
    image: ImageType
    naming: Naming


def too_large(field: str, max_bytes: int) -> RequestTooLarge:
    return RequestTooLarge(f"{field} is larger than {size_text(max_bytes)}, the largest file this server keeps",
                           code="file_too_large", param=field)  # fmt: skip


def check_file_name(value: object, field: str = "file_name") -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a string", param=field)
    name = value.strip()
    if not 1 <= len(name) <= MAX_FILE_NAME:
        raise InvalidRequest(f"{field} must be 1-{MAX_FILE_NAME} characters", param=field)
    if _BAD_NAME.search(name) or name in (".", ".."):
        raise InvalidRequest(f"{field} must be a plain file name: no /, \\, quotes or control characters", param=field)
    return name


def check_upload_path(value: object, field: str = "upload_path") -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a string", param=field)
    path = value.strip().strip("/")
    if not 1 <= len(path) <= MAX_UPLOAD_PATH or not _PATH.fullmatch(path) or ".." in path.split("/"):
        raise InvalidRequest(f"{field} must be 1-{MAX_UPLOAD_PATH} characters of letters, digits, '_', '-', '.' "
                             "in '/'-separated parts (such as avatars/2025)", param=field)  # fmt: skip
    return path


def naming_from(fields: dict[str, Any]) -> Naming:
    """The optional names among a body's or a form's fields. Either spelling; the camelCase one is read only when
    the underscore one is absent or null. Every spelling sent must be a string (or null), so a bad value is never
    silently shadowed; the rules apply to the one read, naming it."""
    for given in NAME_FIELDS:
        if fields.get(given) is not None and not isinstance(fields[given], str):
            raise InvalidRequest(f"{given} must be a string", param=given)
    file_name, upload_path = _first(fields, "file_name", "fileName"), _first(fields, "upload_path", "uploadPath")
    return Naming(None if file_name is None else check_file_name(fields[file_name], file_name),
                  None if upload_path is None else check_upload_path(fields[upload_path], upload_path))  # fmt: skip


def _first(fields: dict[str, Any], *names: str) -> str | None:
    """The first of ``names`` sent with a value."""
    return next((name for name in names if fields.get(name) is not None), None)


def original_name_of_url(url: str) -> str | None:
    """The file name at the end of a URL's path, when it makes a valid name."""
    try:
        last = unquote(urlsplit(url).path.rpartition("/")[2])
    except ValueError:
        return None
    try:
        return check_file_name(last) if last else None
    except InvalidRequest:
        return None


def decode_base64_body(raw: bytes, max_bytes: int) -> DecodedUpload:
    """``POST upload/base64``'s body: ``base64_data`` (a data URL or bare Base64) decoded and identified, and the
    optional names; InvalidRequest or MediaError naming the field that broke a rule."""
    body = json_object(raw)
    naming = naming_from(body)
    source = body.get("base64_data")
    if source is None:
        raise InvalidRequest("base64_data is required", param="base64_data", code="missing_parameter")
    if not isinstance(source, str) or not source.strip():
        raise InvalidRequest("base64_data must be a non-empty string (a data:image/...;base64, URL or bare Base64)",
                             param="base64_data")  # fmt: skip
    # Decoded here with room to spare (the body's own limit bounds it), so a file over the limit is told apart: 413.
    data = decode_inline(source.strip(), field="base64_data", max_bytes=2 * max_bytes, code="invalid_parameter")
    if len(data) > max_bytes:
        raise too_large("base64_data", max_bytes)
    return DecodedUpload(data, identify_image(data[:HEADER_BYTES], field="base64_data"), naming)
