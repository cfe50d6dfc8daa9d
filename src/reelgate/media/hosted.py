"""Files of the file API (``/api/v1/files``) as Reelgate hosts them: their names, their URLs, and reading one that a
generation request names straight from storage, never over HTTP, for its own account only and before it expires.

An uploaded file is one stored object named ``<token>-a<account>-e<expires>.<ext>``: 24 random bytes (32 URL-safe
characters, so nobody can guess a name), the number of the account that uploaded it and the second it expires
(Unix time). Its URL is ``<base>/files/<name>``. Carrying the owner and the expiry in the name lets a worker on
any machine refuse another account's file or an expired one from the URL alone, and read the bytes from the
storage every process shares; the URL's host plays no part, so it works behind any proxy or CDN name and even
when the public address is not reachable from the worker.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from reelgate.errors import MediaError
from reelgate.media.images import size_text
from reelgate.storage import Storage

ROUTE = "/files/"
EXTENSIONS = frozenset({"jpg", "png", "gif", "webp"})
_NAME = re.compile(r"[A-Za-z0-9_-]{32}-a(?P<account>[0-9]{1,19})-e(?P<expires>[0-9]{1,12})\.(?P<ext>jpg|png|gif|webp)")
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class HostedName:
    """A stored file's name and what it says: whose the file is, when it expires, its extension."""

    name: str
    account_id: int
    expires_at: int
    ext: str

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


def new_hosted_name(account_id: int, expires_at: int, ext: str) -> str:
    if ext not in EXTENSIONS:
        raise ValueError(f"unsupported file extension {ext!r}")
    return f"{secrets.token_urlsafe(24)}-a{account_id}-e{expires_at}.{ext}"


def parse_hosted_name(name: str) -> HostedName | None:
    """What a name says, or None when it is not the name of a hosted file (nothing else is ever read by it)."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return HostedName(name, int(match["account"]), int(match["expires"]), match["ext"])


def hosted_url(base_url: str, name: str) -> str:
    return f"{base_url.rstrip('/')}{ROUTE}{name}"


def hosted_name_in_url(url: str) -> HostedName | None:
    """The hosted file an http(s) URL names (``.../files/<name>``, on any host and under any path prefix), or None."""
    if not url[:8].lower().startswith(("http://", "https://")):
        return None
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    head, _, name = path.rpartition("/")
    return parse_hosted_name(name) if head.endswith(ROUTE.rstrip("/")) else None


def iso_time(seconds: float) -> str:
    """A time as the file API shows it: ISO 8601 with its UTC offset, to the second."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


async def read_hosted(storage: Storage, source: str, *, field: str, kind: Literal["image", "video"],
                      account_id: int, max_bytes: int, now: float | None = None) -> bytes | None:  # fmt: skip
    """The bytes of the hosted file ``source`` names, read from storage; None when ``source`` is no hosted file's
    URL (the caller fetches it as usual). A file of another account, an expired one or one that is gone is a
    MediaError naming ``field``: it is never fetched over HTTP instead."""
    hosted = hosted_name_in_url(source)
    if hosted is None:
        return None
    code = "image_processing_error" if kind == "image" else "invalid_parameters"
    # The owner is checked before anything is read: another account learns nothing about the file, not even
    # whether it still exists.
    if hosted.account_id != account_id:
        raise MediaError(code, f"{field} is a file uploaded by another account; upload the picture with this "
                               "account's key (POST /api/v1/files/upload/stream) and use that URL",
                         param=field)  # fmt: skip
    if hosted.expired(time.time() if now is None else now):
        raise MediaError(code, f"{field} is an uploaded file that expired at {iso_time(hosted.expires_at)}; upload "
                               "it again", param=field)  # fmt: skip
    data = await _read(storage, hosted.name, max_bytes)
    if data is None:
        raise MediaError(code, f"{field} is an uploaded file that has been deleted; upload it again", param=field)
    if data is False:
        raise MediaError(code, f"{field} is larger than {size_text(max_bytes)}", param=field)
    return data


async def _read(storage: Storage, name: str, max_bytes: int) -> bytes | None | Literal[False]:
    """The object's bytes, None when it is not there, False when it is larger than ``max_bytes`` (nothing read)."""
    reader = await storage.open(name)
    if reader is None:
        return None
    try:
        if reader.info.size > max_bytes:
            return False
        return b"".join([chunk async for chunk in reader.chunks(0, reader.info.size - 1, READ_CHUNK)])
    finally:
        await reader.aclose()
