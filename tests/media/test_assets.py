"""AssetStore on a real directory: content addressing, atomic writes, idempotency, strict names."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from reelgate.assets import AssetStore


def test_put_names_by_sha256_and_creates_directories_lazily(tmp_path: Path) -> None:
    root = tmp_path / "data" / "assets"
    store = AssetStore(root)
    assert not root.exists()
    name = store.put(b"frame bytes", "jpg")
    assert name == hashlib.sha256(b"frame bytes").hexdigest() + ".jpg"
    path = store.path_for(name)
    assert path == root / name and path.read_bytes() == b"frame bytes"
    assert [p.name for p in root.iterdir()] == [name]  # no temporary file left behind


def test_put_is_idempotent(tmp_path: Path) -> None:
    store = AssetStore(tmp_path)
    first = store.put(b"same", "png")
    mtime = (tmp_path / first).stat().st_mtime_ns
    assert store.put(b"same", "png") == first
    assert (tmp_path / first).stat().st_mtime_ns == mtime
    assert store.put(b"same", "mp4") != first  # the extension is part of the name


def test_put_repairs_a_damaged_copy(tmp_path: Path) -> None:
    store = AssetStore(tmp_path)
    name = store.put(b"0123456789", "mov")
    (tmp_path / name).write_bytes(b"0123")
    assert store.put(b"0123456789", "mov") == name
    assert (tmp_path / name).read_bytes() == b"0123456789"


def test_put_refuses_unknown_extensions(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="extension"):
        AssetStore(tmp_path).put(b"x", "exe")
    with pytest.raises(ValueError):
        AssetStore(tmp_path).put(b"x", "jpg/../../x")


def test_path_for_unknown_but_well_formed_name(tmp_path: Path) -> None:
    assert AssetStore(tmp_path).path_for("a" * 64 + ".jpg") is None


@pytest.mark.parametrize(
    "name",
    [
        "../" + "a" * 64 + ".jpg",
        "a" * 64 + ".jpg/../../etc/passwd",
        "/etc/passwd",
        "A" * 64 + ".jpg",
        "a" * 63 + ".jpg",
        "a" * 65 + ".jpg",
        "a" * 64 + ".gif",
        "a" * 64 + ".jpg\n",
        "a" * 64 + ".jpg\x00",
        "a" * 64,
        "",
        ".",
        "..",
    ],
)
def test_path_for_refuses_malformed_names(tmp_path: Path, name: str) -> None:
    root = tmp_path / "assets"
    store = AssetStore(root)
    store.put(b"real", "jpg")
    (tmp_path / ("a" * 64 + ".jpg")).write_bytes(b"outside the store")
    assert store.path_for(name) is None


def test_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk error (here: the rename fails) propagates as OSError and leaves neither file nor temp file."""
    store = AssetStore(tmp_path)

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store.put(b"payload", "jpg")
    assert list(tmp_path.iterdir()) == []
