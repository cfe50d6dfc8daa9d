"""What image an uploaded file is, by its content alone: JPEG, PNG, GIF or WebP, and its size in pixels.

The file API (docs/files.md) keeps images only, judged by their bytes, never by a file name or a declared type.
Only the header is read (the first ``HEADER_BYTES`` of a streamed upload suffice), so a check costs well under a
millisecond and a stream can be checked before the rest of it is stored. JPEG, PNG and GIF headers are parsed by
Pillow, pinned to those three decoders; Pillow's WebP plugin hands libwebp the whole file, so a WebP header (the
RIFF container's first chunk: VP8, VP8L or VP8X) is read here. Decoding every pixel is left to whatever uses the
image later (a generation's media check does).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from reelgate.errors import MediaError
from reelgate.media.images import MAX_PIXELS

# A JPEG's frame header follows its EXIF, ICC and XMP segments (up to 64 KiB each): 1 MiB holds it in practice.
HEADER_BYTES = 1024 * 1024
CODE = "unsupported_file_type"
_PILLOW_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "GIF": ("image/gif", "gif")}
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, IndexError)
_BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_OURS = ("JPEG image", "PNG image", "GIF image")


@dataclass(frozen=True)
class ImageType:
    """An image's format as the file API reports it, and its dimensions from the header."""

    mime_type: str
    ext: str
    width: int
    height: int


def identify_image(head: bytes, *, field: str) -> ImageType:
    """The type of the image whose first bytes are ``head``; MediaError (code ``unsupported_file_type``) naming
    ``field`` when it is not a JPEG, PNG, GIF or WebP image, or its header is corrupt or declares too many pixels."""
    found = _webp(head, field) if _is_webp(head) else _pillow(head, field)
    if found.width < 1 or found.height < 1:
        raise MediaError(CODE, f"{field} declares an empty image ({found.width}x{found.height} pixels)", param=field)
    if found.width * found.height > MAX_PIXELS:
        raise MediaError(CODE, f"{field} declares {found.width}x{found.height} pixels, more than the "
                               f"{MAX_PIXELS // 1_000_000} MP allowed", param=field)  # fmt: skip
    return found


def _pillow(head: bytes, field: str) -> ImageType:
    try:
        # formats= pins the parser to these three, so no other Pillow plugin ever reads this input. Pillow's own
        # bomb limit (about 89 MP, a warning; twice that, an error) is above ours, which identify_image applies.
        with Image.open(io.BytesIO(head), formats=list(_PILLOW_FORMATS)) as image:
            mime, ext = _PILLOW_FORMATS[str(image.format)]
            width, height = image.size
    except UnidentifiedImageError:
        if _kind(head) in _OURS:  # the right magic bytes, and no header Pillow can read after them
            raise _corrupt(head, field) from None
        raise MediaError(CODE, f"{field} must be a JPEG, PNG, GIF or WebP image, got {_describe(head)}",
                         param=field) from None  # fmt: skip
    except _BOMB:
        raise MediaError(CODE, f"{field} declares more than the {MAX_PIXELS // 1_000_000} MP allowed",
                         param=field) from None  # fmt: skip
    except _UNREADABLE:
        raise _corrupt(head, field) from None
    return ImageType(mime, ext, width, height)


def _corrupt(head: bytes, field: str) -> MediaError:
    return MediaError(CODE, f"{field} is a corrupt or truncated {_kind(head) or 'image'} (its header cannot be read)",
                      param=field)  # fmt: skip


def _is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _webp(head: bytes, field: str) -> ImageType:
    """A WebP's dimensions from its first chunk (RFC 9649): lossy (VP8), lossless (VP8L) or extended (VP8X)."""
    chunk, payload = head[12:16], head[20:30]
    size: tuple[int, int] | None = None
    if len(payload) == 10:
        if chunk == b"VP8 " and payload[3:6] == b"\x9d\x01\x2a":
            size = _le(payload[6:8]) & 0x3FFF, _le(payload[8:10]) & 0x3FFF
        elif chunk == b"VP8L" and payload[0] == 0x2F:
            bits = _le(payload[1:5])
            size = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        elif chunk == b"VP8X":
            size = _le(payload[4:7]) + 1, _le(payload[7:10]) + 1
    if size is None:
        raise MediaError(CODE, f"{field} is a corrupt or truncated WebP image (its header cannot be read)",
                         param=field)  # fmt: skip
    return ImageType("image/webp", "webp", *size)


def _le(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _describe(head: bytes) -> str:
    """What the bytes look like, for the message, so the caller knows what to convert."""
    if not head:
        return "an empty file"
    kind = _kind(head)
    if kind is None:
        return "text" if _looks_like_text(head) else "an unrecognised file type"
    return f"{_ARTICLES.get(kind, 'a')} {kind}"


_ARTICLES = {"AVIF image": "an", "SVG/XML/HTML document": "an"}  # as the names are read out


def _kind(head: bytes) -> str | None:
    kinds = (
        (head.startswith(b"\xff\xd8\xff"), "JPEG image"),
        (head.startswith(b"\x89PNG\r\n\x1a\n"), "PNG image"),
        (head.startswith((b"GIF87a", b"GIF89a")), "GIF image"),
        (head.startswith(b"BM"), "BMP image"),
        (head.startswith((b"II*\x00", b"MM\x00*")), "TIFF image"),
        (head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"), "HEIC image"),
        (head[4:12] in (b"ftypavif", b"ftypavis"), "AVIF image"),
        (head[4:8] == b"ftyp", "video"),
        (head.startswith(b"%PDF"), "PDF document"),
        (head.lstrip().startswith(b"<"), "SVG/XML/HTML document"),
    )
    return next((name for matched, name in kinds if matched), None)


def _looks_like_text(head: bytes) -> bool:
    sample = head[:512]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(byte >= 0x20 or byte in b"\t\r\n" for byte in sample)
