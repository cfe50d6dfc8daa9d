"""AssetStore on the real directory backend and a real index (both engines): capability names, rows before files,
atomic writes, strict names, and no way from a picture's content to its stored name."""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reelgate.assets import AssetStore, ObjectTooLarge, is_capability, new_name
from reelgate.storage import DirectoryStorage
from reelgate.store.sql import Store

CAPABILITY = re.compile(r"[A-Za-z0-9_-]{32}\.(jpg|png|mp4|mov)")


async def _rows(store: Store) -> dict[str, str]:
    rows = await store.db.read(lambda c: c.all("SELECT name, task_id FROM assets"))
    return {str(r["name"]): str(r["task_id"]) for r in rows}


async def test_save_registers_then_writes_under_unguessable_names(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "data" / "assets"
    assets = AssetStore(DirectoryStorage(root), store.uploads)
    assert not root.exists()  # created on first write
    names = await assets.save([(b"frame bytes", "jpg"), (b"clip", "mp4")], account_id=7, task_id="task-a")
    assert all(CAPABILITY.fullmatch(n) for n in names) and names[1].endswith(".mp4")
    assert hashlib.sha256(b"frame bytes").hexdigest() not in names[0]
    assert (root / names[0]).read_bytes() == b"frame bytes" and await assets.read(names[0]) == b"frame bytes"
    assert sorted(p.name for p in root.iterdir()) == sorted(names)  # no temporary file left behind
    assert await _rows(store) == {names[0]: "task-a", names[1]: "task-a"}
    assert sorted(await store.uploads.of_task("task-a")) == sorted(names)


async def test_the_same_bytes_get_a_new_name_each_time(tmp_path: Path, store: Store) -> None:
    """Two elements made from one picture own separate files, so deleting one never takes the other's."""
    assets = AssetStore(DirectoryStorage(tmp_path), store.uploads)
    first = await assets.save([(b"same", "png")], account_id=1, task_id="t1")
    second = await assets.save([(b"same", "png")], account_id=1, task_id="t2")
    assert first != second
    await assets.delete(first)
    assert await assets.open_public(first[0]) is None and await assets.read(second[0]) == b"same"
    assert await _rows(store) == {second[0]: "t2"}


async def test_delete_can_leave_rows_for_the_sweep(tmp_path: Path, store: Store) -> None:
    assets = AssetStore(DirectoryStorage(tmp_path), store.uploads)
    names = await assets.save([(b"x", "jpg")], account_id=1, task_id="t1")
    await assets.delete(names, forget=False)
    await assets.delete(names, forget=False)  # a file already gone is fine
    assert await assets.read(names[0]) is None and await _rows(store) == {names[0]: "t1"}


async def test_a_failed_write_leaves_neither_file_nor_row(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error (here: the rename fails, as on a full disk) propagates as OSError and leaves nothing."""
    assets = AssetStore(DirectoryStorage(tmp_path / "assets"), store.uploads)

    def full_disk(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        await assets.save([(b"payload", "jpg"), (b"more", "png")], account_id=1, task_id="t1")
    assert list((tmp_path / "assets").iterdir()) == [] and await _rows(store) == {}


def test_new_names_are_random_and_refuse_unknown_extensions() -> None:
    names = {new_name("jpg") for _ in range(1000)}
    assert len(names) == 1000 and all(is_capability(n) for n in names)
    with pytest.raises(ValueError, match="extension"):
        new_name("exe")
    with pytest.raises(ValueError):
        new_name("jpg/../../x")


async def test_a_content_hash_name_is_read_for_old_tasks_but_never_served(tmp_path: Path) -> None:
    """Files stored before capability names (named by SHA-256) still feed the tasks that hold them, but /assets
    never serves them: the hash of a known picture must not tell whether some tenant uploaded it."""
    legacy = hashlib.sha256(b"old").hexdigest() + ".jpg"
    (tmp_path / legacy).write_bytes(b"old")
    assets = AssetStore(DirectoryStorage(tmp_path))
    assert await assets.read(legacy) == b"old"
    assert await assets.open_public(legacy) is None


@pytest.mark.parametrize(
    "name",
    [
        "../" + "a" * 32 + ".jpg",
        "a" * 32 + ".jpg/../../etc/passwd",
        "/etc/passwd",
        "a" * 31 + ".jpg",
        "a" * 33 + ".jpg",
        "a" * 32 + ".gif",
        "a" * 32 + ".jpg\n",
        "a" * 32 + ".jpg\x00",
        "a" * 31 + "/.jpg",
        "a" * 31 + "..jpg",
        "a" * 32,
        "",
        ".",
        "..",
    ],
)
async def test_malformed_names_are_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "assets"
    root.mkdir()
    (tmp_path / ("a" * 32 + ".jpg")).write_bytes(b"outside the store")
    (root / ("a" * 31 + "..jpg")).write_bytes(b"not a name we make")
    assets = AssetStore(DirectoryStorage(root))
    assert await assets.read(name) is None and await assets.open_public(name) is None


async def _stream(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_stream_is_saved_registered_and_counted(tmp_path: Path, store: Store) -> None:
    assets = AssetStore(DirectoryStorage(tmp_path), store.uploads)
    name, size = await assets.save_stream(_stream(b"abc", b"defg"), "mp4", account_id=3, task_id="t9", max_bytes=7)
    assert is_capability(name) and name.endswith(".mp4") and size == 7
    assert await assets.read(name) == b"abcdefg" and await _rows(store) == {name: "t9"}


async def test_a_stream_over_its_cap_leaves_neither_object_nor_row(tmp_path: Path, store: Store) -> None:
    assets = AssetStore(DirectoryStorage(tmp_path / "objects"), store.uploads)
    with pytest.raises(ObjectTooLarge, match="larger than 6 bytes"):
        await assets.save_stream(_stream(b"abc", b"defg"), "mp4", account_id=3, task_id="t9", max_bytes=6)
    assert list((tmp_path / "objects").iterdir()) == [] and await _rows(store) == {}
