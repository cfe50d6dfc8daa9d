"""Stored media behind one interface: the ``Storage`` protocol and the backends that implement it.

Everything that keeps bytes (reference copies, thumbnails, results, uploads) goes through ``Storage``: nothing
outside this package sees a filesystem path or a bucket key, so every API and worker process, on any machine, sees
the same objects when they share a bucket. Names are decided above (``reelgate.assets``: capability names,
ownership rows); a backend only keeps bytes under a name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from reelgate.config import Settings
from reelgate.storage.base import ObjectInfo, ObjectReader, Storage, StorageUnavailable, is_storable
from reelgate.storage.directory import DirectoryStorage

if TYPE_CHECKING:
    from reelgate.storage.s3 import S3Location, S3Storage

__all__ = [
    "DirectoryStorage",
    "ObjectInfo",
    "ObjectReader",
    "S3Location",
    "S3Storage",
    "Storage",
    "StorageUnavailable",
    "is_storable",
    "storage_from_settings",
]


def __getattr__(name: str) -> Any:
    # The S3 backend is imported when first named: aiobotocore costs every process 0.4 s of start-up, and a
    # deployment on the directory backend (the default) never needs it.
    if name in ("S3Location", "S3Storage"):
        from reelgate.storage import s3

        return getattr(s3, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def storage_from_settings(settings: Settings) -> Storage:
    """The backend REELGATE_STORAGE_URL chooses: a directory (by default ``<data dir>/assets``) or an S3 bucket."""
    url = urlsplit(settings.storage_url)
    if url.scheme != "s3":
        return DirectoryStorage(settings.assets_dir)
    from reelgate.storage.s3 import S3Location, S3Storage

    location = S3Location(
        bucket=url.netloc,
        prefix=unquote(url.path).strip("/"),
        endpoint_url=settings.s3_endpoint_url,
        region=settings.aws_region,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=settings.aws_secret_access_key,
        session_token=settings.aws_session_token,
        presign_seconds=settings.s3_presign_seconds,
    )
    return S3Storage(location)
