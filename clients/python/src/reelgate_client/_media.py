"""Turn a media argument (URL, Base64, bytes or a local file) into the string the API takes for it."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Literal

from reelgate_client._errors import MediaInputError

MediaInput = str | os.PathLike[str] | bytes
MediaKind = Literal["image", "video"]

_BARE_BASE64 = re.compile(r"[A-Za-z0-9+/=_\-\s]{64,}")
# Content signatures, not file names: the server checks content the same way.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF8", "image/gif"),
    (0, b"BM", "image/bmp"),
    (4, b"ftypqt", "video/quicktime"),
    (4, b"ftyp", "video/mp4"),
    (4, b"moov", "video/quicktime"),
    (4, b"mdat", "video/quicktime"),
    (4, b"wide", "video/quicktime"),
)


def sniff_mime(data: bytes, kind: MediaKind) -> str:
    """The MIME type of ``data`` by its magic bytes.

    Unknown content still gets a ``<kind>/...`` type so the request reaches the server, whose answer names the
    file type it found and the formats it accepts (better than a guess here).
    """
    if data[8:12] == b"WEBP" and data.startswith(b"RIFF"):
        return "image/webp"
    for offset, magic, mime in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return mime
    return f"{kind}/octet-stream"


def data_uri(data: bytes, kind: MediaKind) -> str:
    return f"data:{sniff_mime(data, kind)};base64,{base64.b64encode(data).decode('ascii')}"


def encode_media(value: MediaInput, kind: MediaKind, field: str) -> str:
    """An http(s) URL or Base64 string as is; bytes and local files as a Base64 data URI with the right type."""
    if isinstance(value, bytes | bytearray | memoryview):
        return data_uri(bytes(value), kind)
    if isinstance(value, str):
        text = value.strip()
        if text[:8].lower().startswith(("http://", "https://")) or text[:5].lower() == "data:":
            return text
        if _BARE_BASE64.fullmatch(text) and not _is_file(text):
            return text
    return data_uri(_read_file(value, field), kind)


def _is_file(text: str) -> bool:
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError):  # a name too long for the file system is Base64, not a path
        return False


def _read_file(value: str | os.PathLike[str], field: str) -> bytes:
    path = Path(value).expanduser()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MediaInputError(
            f"{field}: no such file {str(path)!r} (media must be an http(s) URL, Base64 data, bytes or a file path)"
        ) from None
    except OSError as exc:
        raise MediaInputError(f"{field}: cannot read {str(path)!r}: {exc.strerror or exc}") from None
