"""Stored media behind one interface: the ``Storage`` protocol and the backends that implement it.

Everything that keeps bytes (reference copies, thumbnails, results, uploads) goes through ``Storage``: nothing
outside this package sees a filesystem path or a bucket key, so every API and worker process, on any machine, sees
the same objects when they share a bucket. Names are decided above (``reelgate.assets``: capability names,
ownership rows); a backend only keeps bytes under a name.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from reelgate.config import Settings
from reelgate.storage.base import ObjectInfo, ObjectReader, Storage, StorageUnavailable, is_storable
from reelgate.storage.directory import DirectoryStorage
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


def storage_from_settings(settings: Settings) -> Storage:
    """The backend REELGATE_STORAGE_URL chooses: a directory (by default ``<data dir>/assets``) or an S3 bucket."""
    url = urlsplit(settings.storage_url)
    if url.scheme != "s3":
        return DirectoryStorage(settings.assets_dir)
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
