"""Content-addressed file store for reference media and thumbnails: ``<sha256>.<ext>``, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

EXTENSIONS = frozenset({"jpg", "png", "mp4", "mov"})
# Names are only ever ours: 64 lowercase hex digits and a known extension, so no "..", "/" or NUL gets through.
_NAME = re.compile(r"[0-9a-f]{64}\.(?:jpg|png|mp4|mov)")


class AssetStore:
    """Files named by their SHA-256, so the same bytes are stored once and a name never changes meaning."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        return self._root

    def put(self, data: bytes, ext: str) -> str:
        """Store ``data`` and return its name; OSError (e.g. ENOSPC) propagates to the caller."""
        if ext not in EXTENSIONS:
            raise ValueError(f"unsupported asset extension {ext!r}")
        name = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        target = self._root / name
        # Same name means same bytes; a size check also repairs a file truncated by something outside us.
        if target.is_file() and target.stat().st_size == len(data):
            return name
        self._root.mkdir(parents=True, exist_ok=True)
        self._write_atomically(target, data)
        return name

    def path_for(self, name: str) -> Path | None:
        """The file for a name ``put`` returned, or None for anything else (malformed names included)."""
        if not _NAME.fullmatch(name):
            return None
        path = self._root / name
        return path if path.is_file() else None

    def _write_atomically(self, target: Path, data: bytes) -> None:
        # A reader sees either no file or the whole file: write aside, flush to disk, then rename over.
        fd, tmp = tempfile.mkstemp(dir=self._root, prefix=".tmp-", suffix=target.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        # The rename is durable only once the directory entry is on disk too.
        fd = os.open(self._root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
