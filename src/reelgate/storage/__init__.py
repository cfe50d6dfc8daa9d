"""Stored media behind one interface: the ``Storage`` protocol and the backends that implement it.

Everything that keeps bytes (reference copies, thumbnails, uploads) goes through ``Storage``: nothing outside this
package sees a filesystem path, so another backend (object storage) can stand in for the directory one. Names are
decided above (``reelgate.assets``: capability names, ownership rows); a backend only keeps bytes under a name.
"""

from __future__ import annotations

from reelgate.config import Settings
from reelgate.storage.base import ObjectInfo, ObjectReader, Storage
from reelgate.storage.directory import DirectoryStorage

__all__ = ["DirectoryStorage", "ObjectInfo", "ObjectReader", "Storage", "storage_from_settings"]


def storage_from_settings(settings: Settings) -> Storage:
    """The backend the settings choose: today the ``assets`` directory under the data directory."""
    return DirectoryStorage(settings.assets_dir)
