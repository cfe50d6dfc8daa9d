"""Check reference images (JPEG/PNG by content, size, dimensions, aspect) and fingerprint them for near-duplicates."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image, ImageOps

from reelgate.errors import MEDIA_ERROR_CODES, MediaError
from reelgate.media.similarity import Fingerprint, difference, fingerprint, is_same_picture

MIN_SIDE = 300
MAX_ASPECT = 2.5
# Checked from the header before any pixel is decoded: 50 MP is beyond any camera photo a 10 MB cap admits
# in practice, and it stays below Pillow's own bomb warning (about 89 MP), so Pillow never needs its globals.
MAX_PIXELS = 50_000_000

_CODE = MEDIA_ERROR_CODES["image"]
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# JPEG start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


@dataclass(frozen=True)
class ImageInfo:
    format: Literal["jpeg", "png"]
    width: int
    height: int
    ext: str
    fingerprint: Fingerprint = field(repr=False, compare=False)


class _Refused(Exception):
    """Internal: a rule broken, the message without the field name."""


def inspect_image(data: bytes, *, field: str, max_bytes: int) -> ImageInfo:
    """Apply the contract's image rules to ``data``; raise MediaError naming ``field`` and the rule broken."""
    try:
        return _inspect(data, max_bytes)
    except _Refused as exc:
        raise MediaError(_CODE, f"{field} {exc}", param=field) from None


def _inspect(data: bytes, max_bytes: int) -> ImageInfo:
    fmt = _sniff(data)
    if len(data) > max_bytes:
        raise _Refused(f"is larger than {size_text(max_bytes)}")
    width, height = _header_size(data, fmt)
    _check_dimensions(width, height)
    image = _decode(data, fmt)
    width, height = image.size
    ext = "jpg" if fmt == "jpeg" else "png"
    return ImageInfo(format=fmt, width=width, height=height, ext=ext, fingerprint=fingerprint(image))


def _sniff(data: bytes) -> Literal["jpeg", "png"]:
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data.startswith(_PNG_MAGIC):
        return "png"
    raise _Refused(f"must be a JPEG or PNG image, got {_describe(data)}")


def _describe(data: bytes) -> str:
    """Name the file type for the error message, so the caller knows what to convert."""
    head = data[:16]
    kinds = (
        (head.startswith((b"GIF87a", b"GIF89a")), "a GIF image"),
        (head[:4] == b"RIFF" and head[8:12] == b"WEBP", "a WebP image"),
        (head.startswith(b"BM"), "a BMP image"),
        (head.startswith((b"II*\x00", b"MM\x00*")), "a TIFF image"),
        (head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"), "a HEIC image"),
        (head[4:12] in (b"ftypavif", b"ftypavis"), "an AVIF image"),
        (head[4:8] == b"ftyp", "a video"),
        (head.startswith(b"%PDF"), "a PDF document"),
        (head.lstrip().startswith(b"<"), "an SVG/XML/HTML document"),
    )
    if not data:
        return "no data"
    return next((name for matched, name in kinds if matched), "an unrecognised file type")


def _header_size(data: bytes, fmt: str) -> tuple[int, int]:
    size = _png_size(data) if fmt == "png" else _jpeg_size(data)
    if size is None:
        raise _Refused(f"is a corrupt {fmt.upper()} image (no readable header)")
    return size


def _png_size(data: bytes) -> tuple[int, int] | None:
    # The first chunk must be IHDR: 4-byte length, "IHDR", then width and height as big-endian u32.
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1  # fill byte before a marker
        elif marker in _STANDALONE_MARKERS:
            pos += 2
        elif marker in _SOF_MARKERS:
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            return int.from_bytes(data[pos + 7 : pos + 9], "big"), height
        elif marker == 0xDA:
            return None  # scan data before any frame header
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return None


def _check_dimensions(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise _Refused(f"declares {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} MP allowed")
    if min(width, height) < MIN_SIDE:
        raise _Refused(f"must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {width}x{height}")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise _Refused(f"must have an aspect ratio between 1:2.5 and 2.5:1, got {width}x{height}")


def _decode(data: bytes, fmt: str) -> Image.Image:
    """Decode every pixel (so truncation and corruption show now) and apply the EXIF orientation."""
    try:
        # formats= pins the decoder to what the magic bytes said, so no other plugin ever parses this input.
        with Image.open(io.BytesIO(data), formats=[fmt.upper()]) as opened:
            opened.load()
            return ImageOps.exif_transpose(opened)
    except (*_UNREADABLE, Image.DecompressionBombWarning) as exc:
        raise _Refused(f"is a corrupt or truncated {fmt.upper()} image") from exc


def is_near_duplicate(a: ImageInfo, b: ImageInfo) -> bool:
    """True when the two images are the same picture (re-encoded, resized, cropped a little, recoloured), not two
    views of a subject; see docs/near-duplicates.md for how the rule was measured."""
    return is_same_picture(difference(a.fingerprint, b.fingerprint))


def size_text(n: int) -> str:
    """A byte count for messages: "10 MB", or exact bytes below a megabyte."""
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n} bytes"
