"""The sweeps, on both engines: the deadline sweep fails overdue tasks nobody holds and leaves a task whose lease is
live to its worker; the stored-media sweep removes what nothing needs (each object lives as long as its element,
its task, or its result's retention) and never what a live task or element still needs, even a task being made
while it decides."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fakes.media_server import MediaServer
from harness import make_settings
from procs import free_port
from reelgate.assets import AssetStore, expiry_of
from reelgate.config import ConfigError, Settings
from reelgate.domain import new_webhook_id
from reelgate.media.fetch import FetchLimits, make_fetch_client
from reelgate.providers.kling.results import store_result
from reelgate.runtime import Runtime, build_runtime
from reelgate.storage import DirectoryStorage, S3Location, S3Storage
from reelgate.store.sql import Store
from reelgate.store.tasks import Finish
from reelgate.worker import Worker

from .factories import account, done, new_task

LEASE = 30.0


def _sweep(task_id: str, now: float) -> Finish:
    return Finish(task_id=task_id, status="failed", now=now, guard="expired", error_code="generation_timeout",
                  error_message="late", webhook_id=f"msg_{task_id}")  # fmt: skip


async def _overdue_and_claimed(store: Store) -> tuple[str, float]:
    """A task past its deadline, claimed by worker w1 at the time returned (its lease runs LEASE from then)."""
    acct = await account(store)
    rec, _ = await store.tasks.create(new_task(acct, deadline=-1), None)
    now = time.time()
    (claim,) = await store.tasks.claim("w1", now, LEASE, 1)
    assert claim.id == rec.id
    return rec.id, now


async def test_overdue_lists_no_task_whose_lease_is_live(store: Store) -> None:
    task_id, now = await _overdue_and_claimed(store)
    assert await store.tasks.overdue(now + 1) == []
    assert await store.tasks.overdue(now + LEASE) == []  # the lease still holds at its expiry instant
    assert await store.tasks.overdue(now + LEASE + 1) == [task_id]  # expired: its worker is gone


async def test_the_expired_guard_refuses_a_task_whose_lease_is_live(store: Store) -> None:
    task_id, now = await _overdue_and_claimed(store)
    assert await store.tasks.finish(_sweep(task_id, now + 1)) is None
    assert await store.tasks.finish(_sweep(task_id, now + LEASE)) is None
    task = await store.tasks.get(task_id)
    assert task is not None and task.status == "processing"
    # Its worker finishes it as usual, and is charged once; the sweep took nothing.
    finished = await store.tasks.finish(done(task_id, "w1"))
    assert finished is not None and finished.status == "completed"


async def test_the_sweep_takes_an_overdue_task_once_its_lease_has_expired(store: Store) -> None:
    task_id, now = await _overdue_and_claimed(store)
    swept = await store.tasks.finish(_sweep(task_id, now + LEASE + 1))
    assert swept is not None and swept.status == "failed" and swept.error_code == "generation_timeout"
    assert await store.tasks.finish(done(task_id, "w1")) is None  # the dead worker's late answer changes nothing


@pytest.fixture
async def runtime(tmp_path: Path, db_url: str) -> AsyncIterator[Runtime]:
    """The real service on each engine, without a worker of its own: the test plays the worker."""
    rt = build_runtime(make_settings(tmp_path, db_url, lease_seconds=LEASE), worker=False, dispatcher=False)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.close()


async def test_the_service_sweep_leaves_a_running_task_to_its_worker(runtime: Runtime) -> None:
    store = runtime.store
    acct = await account(store, credits=2000)
    running, _ = await store.tasks.create(new_task(acct, deadline=-1), None)
    orphan, _ = await store.tasks.create(new_task(acct, deadline=-1), None)
    assert [c.id for c in await store.tasks.claim("w1", time.time(), LEASE, 1)] == [running.id]
    # Claimed by a worker that has since died: its lease ran out a second ago.
    assert [c.id for c in await store.tasks.claim("w-dead", time.time(), -1.0, 1)] == [orphan.id]
    assert await runtime.service.fail_overdue() == 1
    orphaned, alive = await store.tasks.get(orphan.id), await store.tasks.get(running.id)
    assert orphaned is not None and orphaned.status == "failed" and orphaned.error_code == "generation_timeout"
    assert alive is not None and alive.status == "processing"
    assert await store.tasks.finish(done(running.id, "w1")) is not None
    b = (await store.accounts.view(acct)).balance
    assert (b.available, b.reserved, b.captured) == (1000, 0, 1000)  # the running one charged, the orphan refunded


# --- the stored-media sweep: what lives as long as what, and what a live task holds --------------------------------

DAY = 86400.0
RETENTION = 30 * DAY


class _Objects:
    """An AssetStore on a real directory and the store's real index, and a look at what is stored."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store, self.root = store, root
        self.assets = AssetStore(DirectoryStorage(root), store.uploads, result_retention=RETENTION)

    async def save(self, acct: int, task_id: str, *exts: str) -> list[str]:
        return await self.assets.save([(f"bytes of {ext}".encode(), ext) for ext in exts], account_id=acct,
                                      task_id=task_id)  # fmt: skip

    async def result(self, acct: int, task_id: str) -> str:
        async def video() -> AsyncIterator[bytes]:
            yield b"\x00\x00\x00\x18ftypmp42 a result"

        name, _ = await self.assets.save_stream(video(), "mp4", account_id=acct, task_id=task_id, max_bytes=1 << 20,
                                                expires_at=self.assets.result_expiry())  # fmt: skip
        return name

    def stored(self) -> set[str]:
        return {p.name for p in self.root.iterdir()} if self.root.is_dir() else set()

    async def rows(self) -> set[str]:
        return {str(r["name"]) for r in await self.store.db.read(lambda c: c.all("SELECT name FROM assets"))}

    async def both(self) -> set[str]:
        """What is stored; the rows must say the same (nothing stored without its row, no row left without it)."""
        rows = await self.rows()
        assert rows == self.stored(), (rows, self.stored())
        return rows


@pytest.fixture
def objects(store: Store, tmp_path: Path) -> _Objects:
    return _Objects(store, tmp_path / "objects")


async def _completed(store: Store, acct: int, *, element: bool, params: dict[str, Any] | None = None) -> tuple[str,
                                                                                                            str]:  # fmt: skip
    """A completed task of ``acct`` that made an element (its id returned) or, like a video task, none ("")."""
    task = new_task(acct, **(params or {}))
    await store.tasks.create(task, None)
    # Claims take the oldest due task first: others the test made stay live (processing), as they were.
    assert task.id in [c.id for c in await store.tasks.claim("w1", time.time(), LEASE, 100)]
    element_id = str(int(time.time() * 1e6)) if element else ""
    made = {"element": {"element_id": element_id, "provider": "local"}} if element else {}
    assert await store.tasks.finish(done(task.id, "w1", **made)) is not None
    return task.id, element_id


async def _pending(store: Store, acct: int, **params: Any) -> str:
    task = new_task(acct, **params)
    await store.tasks.create(task, None)
    return task.id


async def test_each_object_lives_as_long_as_its_owner(store: Store, objects: _Objects) -> None:
    """An element's media as long as the element; a pending task's as long as it runs; a completed video task's
    result until its expiry and its other media as long; a failed or never-made task's, nothing (after the grace
    period the sweep gives a submit or a run that may still be writing)."""
    acct = await account(store, credits=20_000)
    pending = await _pending(store, acct)
    live_task, _ = await _completed(store, acct, element=True)
    gone_task, gone_element = await _completed(store, acct, element=True)
    video_task, _ = await _completed(store, acct, element=False)
    failed = await _pending(store, acct)
    await store.tasks.finish(Finish(task_id=failed, status="failed", now=time.time(), guard="cancel", account_id=acct,
                                    error_code="request_cancelled", error_message="x",
                                    webhook_id=new_webhook_id()))  # fmt: skip
    keep = {*await objects.save(acct, pending, "jpg"), *await objects.save(acct, live_task, "jpg", "png", "mp4")}
    video_inputs = await objects.save(acct, video_task, "jpg")
    result = await objects.result(acct, video_task)
    dead = {*await objects.save(acct, gone_task, "jpg", "png"), *await objects.save(acct, failed, "jpg"),
            *await objects.save(acct, "task-unified-1757169743-nevermad", "png")}  # fmt: skip
    assert await store.elements.mark_deleted(gone_element, acct, time.time()) is not None
    assert await objects.both() == keep | dead | {*video_inputs, result}

    assert await objects.assets.sweep(grace=3600) == 0  # all younger than the grace period
    now = time.time() + 1
    assert await objects.assets.sweep(grace=0, now=now) == len(dead)
    assert await objects.both() == keep | {*video_inputs, result}
    assert await objects.assets.sweep(grace=0, now=now) == 0  # idempotent

    # A day before the result expires, it and the video task's input copies stay; after, they go.
    assert expiry_of(result) is not None and expiry_of(result) == pytest.approx(time.time() + RETENTION, abs=5)
    assert await objects.assets.sweep(grace=0, now=now + RETENTION - DAY) == 0
    assert await objects.assets.sweep(grace=0, now=now + RETENTION + 1) == 2
    assert await objects.both() == keep


async def test_a_live_task_of_the_account_that_names_an_object_holds_it(store: Store, objects: _Objects) -> None:
    """Deleting an element removes its media at once except one a live task of the account names by URL (a video
    task's first frame, say): that one stays until the task ends, then the sweep takes it. Another account's task
    holds nothing: an account's requests may only hold its own objects."""
    acct, other = await account(store, credits=20_000), await account(store, "other", credits=5000)
    task_id, element_id = await _completed(store, acct, element=True)
    front, side = await objects.save(acct, task_id, "jpg", "png")
    url = f"https://reelgate.example.com/assets/{front}"
    video = await _pending(store, acct, model_params={}, image_start=url)
    await _pending(store, other, image_start=f"https://reelgate.example.com/assets/{side}")
    assert await store.elements.mark_deleted(element_id, acct, time.time()) is not None
    assert await objects.assets.release_task(task_id, acct) == [side]
    assert await objects.both() == {front}
    assert await objects.assets.sweep(grace=0, now=time.time() + 1) == 0  # still named by a live task
    (claim,) = [c for c in await store.tasks.claim("w1", time.time(), LEASE, 5) if c.id == video]
    assert await store.tasks.finish(done(claim.id, "w1")) is not None
    assert await objects.assets.sweep(grace=0, now=time.time() + 1) == 1
    assert await objects.both() == set()


async def test_held_objects_never_stall_the_sweep_behind_them(store: Store, objects: _Objects) -> None:
    """Batches go on from where the last one ended: three held objects at the front of the queue, batches of two."""
    acct = await account(store, credits=20_000)
    held_task, held_element = await _completed(store, acct, element=True)
    held = await objects.save(acct, held_task, "jpg", "jpg", "jpg")
    await _pending(store, acct, urls=[f"https://cdn.example/assets/{name}" for name in held])
    gone_task, gone_element = await _completed(store, acct, element=True)
    gone = await objects.save(acct, gone_task, "png", "png", "png")
    for element_id in (held_element, gone_element):
        assert await store.elements.mark_deleted(element_id, acct, time.time()) is not None
    assert await objects.assets.sweep(grace=0, batch=2, now=time.time() + 1) == 3
    assert await objects.both() == set(held) and not set(gone) & objects.stored()


async def test_a_removal_cut_short_is_finished_by_the_next_sweep(store: Store, objects: _Objects) -> None:
    """The decision is committed first (the rows marked released), then the objects go, then the rows: a process
    that dies in between leaves marked rows, and the next sweep removes their objects and rows."""
    acct = await account(store, credits=20_000)
    task_id, element_id = await _completed(store, acct, element=True)
    names = await objects.save(acct, task_id, "jpg", "png")
    assert await store.elements.mark_deleted(element_id, acct, time.time()) is not None
    assert sorted(await store.uploads.release(acct, names, now=time.time())) == sorted(names)  # ... then killed
    assert await objects.both() == set(names)
    assert await objects.assets.sweep(grace=0, now=time.time() + 1) == 2
    assert await objects.both() == set()


class _TaskBeingMade:
    """A task creation caught in the middle of its transaction, as store/task_create.py makes one: the account's
    row updated (so held until the end), the task inserted, nothing committed yet."""

    def __init__(self, db_url: str, acct: int, params: dict[str, Any]) -> None:
        self.db_url, self.acct, self.task = db_url, acct, new_task(acct, **params)
        self._pg: asyncpg.Connection | None = None
        self._lite: sqlite3.Connection | None = None

    def _values(self) -> tuple[Any, ...]:
        t = self.task
        return (t.id, t.account_id, t.api_key_id, t.model, t.provider, t.created, t.now, t.now, t.deadline, t.now,
                json.dumps(t.params), t.price, t.user_group, t.billing_rule, t.estimated_time)  # fmt: skip

    _COLUMNS = ("id, account_id, api_key_id, model, provider, status, created, created_at, updated_at, deadline, "
                "run_after, params, price, user_group, billing_rule, estimated_time")  # fmt: skip

    async def begin(self) -> None:
        if self.db_url.startswith("sqlite"):
            self._lite = sqlite3.connect(self.db_url.removeprefix("sqlite:///"), isolation_level=None)
            self._lite.execute("BEGIN IMMEDIATE")
            self._lite.execute("UPDATE accounts SET in_flight = in_flight + 1 WHERE id = ?", (self.acct,))
            self._lite.execute(f"INSERT INTO tasks ({self._COLUMNS}) VALUES (?, ?, ?, ?, ?, 'pending', "
                               "?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self._values())  # fmt: skip
            return
        self._pg = await asyncpg.connect(self.db_url)
        await self._pg.execute("BEGIN")
        await self._pg.execute("UPDATE accounts SET in_flight = in_flight + 1 WHERE id = $1", self.acct)
        await self._pg.execute(f"INSERT INTO tasks ({self._COLUMNS}) VALUES ($1, $2, $3, $4, $5, 'pending', "
                               "$6, $7, $8, $9, $10, $11, $12, $13, $14, $15)", *self._values())  # fmt: skip

    async def commit(self) -> None:
        if self._lite is not None:
            self._lite.execute("COMMIT")
            self._lite.close()
        if self._pg is not None:
            await self._pg.execute("COMMIT")
            await self._pg.close()


async def test_a_task_made_while_the_sweep_decides_keeps_what_it_names(
    store: Store, objects: _Objects, db_url: str
) -> None:
    """The race: a deleted element's frontal image is named by a task whose creation is under way when the sweep
    runs. The sweep waits for that creation (it holds the account's row, as every task creation does), sees the
    task, and leaves the image; the element's other image goes."""
    acct = await account(store, credits=20_000)
    task_id, element_id = await _completed(store, acct, element=True)
    front, side = await objects.save(acct, task_id, "jpg", "png")
    assert await store.elements.mark_deleted(element_id, acct, time.time()) is not None
    making = _TaskBeingMade(db_url, acct, {"image_start": f"https://reelgate.example.com/assets/{front}"})
    await making.begin()
    sweep = asyncio.create_task(objects.assets.sweep(grace=0, now=time.time() + 1))
    await asyncio.sleep(0.3)
    try:
        assert not sweep.done()  # waiting for the creation to end
    finally:
        await making.commit()
    assert await sweep == 1
    assert await objects.both() == {front}
    task = await store.tasks.get(making.task.id)
    assert task is not None and task.status == "pending"


async def test_the_workers_hourly_sweep_does_every_part_even_when_one_fails(tmp_path: Path, db_url: str) -> None:
    """Stored media nothing needs, unfinished writes a killed process left (here older than the 0 h the settings
    allow), and the rest; with a bucket nobody can reach, the parts that need it are logged and tried next hour,
    the others still run."""
    settings = make_settings(tmp_path, db_url, incomplete_upload_hours=0)
    rt = build_runtime(settings, worker=False, dispatcher=False)
    await rt.start()
    try:
        store, assets = rt.store, rt.service.assets
        acct = await account(store, credits=5000)
        task_id, element_id = await _completed(store, acct, element=True)
        await assets.save([(b"front", "jpg")], account_id=acct, task_id=task_id)
        assert await store.elements.mark_deleted(element_id, acct, time.time()) is not None
        await store.db.write(lambda c: c.run("UPDATE assets SET created = created - 7200"))  # past the grace hour
        abandoned = settings.assets_dir / ".tmp-killed-mid-write.mp4"
        abandoned.write_bytes(b"half a video")
        worker = Worker(rt.service, {}, concurrency=1)
        swept = await worker.housekeeping()
        assert swept["stored media"] == 1 and swept["unfinished writes"] == 1
        assert list(settings.assets_dir.iterdir()) == []

        closed = S3Storage(S3Location(bucket="nowhere", endpoint_url=f"http://127.0.0.1:{free_port()}",
                                      access_key_id="k", secret_access_key="s"), attempts=1)  # fmt: skip
        assets.storage = closed
        try:
            unreachable = await worker.housekeeping()
        finally:
            await closed.aclose()
        assert "unfinished writes" not in unreachable and unreachable["idempotency keys"] == 0
    finally:
        await rt.close()


def test_retention_settings_are_read_and_checked() -> None:
    read = Settings.from_env({"REELGATE_RESULT_RETENTION_DAYS": "7.5", "REELGATE_INCOMPLETE_UPLOAD_HOURS": "0"})
    assert (read.result_retention_days, read.incomplete_upload_hours) == (7.5, 0.0)
    assert (Settings().result_retention_days, Settings().incomplete_upload_hours) == (30.0, 24.0)
    with pytest.raises(ConfigError, match="REELGATE_RESULT_RETENTION_DAYS must be greater than 0"):
        Settings.from_env({"REELGATE_RESULT_RETENTION_DAYS": "0"})
    with pytest.raises(ConfigError, match="REELGATE_INCOMPLETE_UPLOAD_HOURS must not be negative"):
        Settings.from_env({"REELGATE_INCOMPLETE_UPLOAD_HOURS": "-1"})


async def test_a_stored_result_is_named_and_recorded_with_its_expiry(store: Store, objects: _Objects) -> None:
    """A video model's result, streamed in from the vendor's URL, carries its expiry in its name and its row, so
    /assets answers 410 from then on and the sweep removes it then."""
    acct = await account(store)
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
    with MediaServer() as vendor:
        vendor.serve("/result.mp4", video, "video/mp4")
        async with make_fetch_client(allow_private=True, limits=FetchLimits(max_bytes=1 << 20)) as client:
            name, size = await store_result(client, vendor.url("/result.mp4"), objects.assets, account_id=acct,
                                            task_id="task-unified-1757169743-vid00000", max_bytes=1 << 20,
                                            total_timeout=10, allow_private=True)  # fmt: skip
    expires = expiry_of(name)
    assert size == len(video) and await objects.assets.read(name) == video
    assert expires is not None and expires == pytest.approx(time.time() + RETENTION, abs=5)
    row = await store.db.read(lambda c: c.one("SELECT expires_at FROM assets WHERE name = :n", {"n": name}))
    assert row is not None and row["expires_at"] == expires
