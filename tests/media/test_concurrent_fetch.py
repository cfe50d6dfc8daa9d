"""MediaPipeline.prepare loads a task's items at once, within its per-task and per-host bounds, against a real
loopback origin that answers each picture after 300 ms and counts the requests it has in flight per host.

Overlap is shown by the origin's own count, never by wall time. Stored uploads and file-API files are still read
from storage; a failure cancels the other items and stores nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes import mediagen
from fakes.media_server import Behaviour, MediaServer, _Handler
from harness import make_settings
from reelgate.assets import AssetStore
from reelgate.catalog.custom_element.params import CustomElementParams
from reelgate.catalog.custom_element.pipeline import MediaPipeline
from reelgate.config import Settings
from reelgate.errors import MediaError
from reelgate.media.fetch import FetchLimits, make_fetch_client
from reelgate.media.hosted import hosted_url, new_hosted_name
from reelgate.params import INTERNAL
from reelgate.storage import DirectoryStorage
from reelgate.store.sql import Store

DELAY = 0.3
DNS = {"origin-a.test": ["127.0.0.1"], "origin-b.test": ["127.0.0.1"]}
REFER = "model_params.element_image_list.refer_images[{}].image_url"


async def fake_dns(host: str, port: int) -> list[str]:
    return DNS[host]


@dataclass
class Origin:
    """Requests in flight per Host header (and in all), and the most seen at once."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    now: Counter[str] = field(default_factory=Counter)
    most: Counter[str] = field(default_factory=Counter)

    def slow(self, body: bytes) -> Behaviour:
        def behaviour(h: _Handler) -> None:
            host = h.headers.get("Host", "").split(":")[0]
            with self.lock:
                for key in (host, "all"):
                    self.now[key] += 1
                    self.most[key] = max(self.most[key], self.now[key])
            h.wait(DELAY)
            # Counted out before the answer is sent: the client frees its place only once it has the body, so a
            # request counted here always sits inside the client's place.
            with self.lock:
                for key in (host, "all"):
                    self.now[key] -= 1
            h.send_bytes(200, body, "image/jpeg")

        return behaviour


@dataclass(frozen=True)
class Job:
    task_id: str
    account_id: int = 1


@dataclass
class Reports:
    seen: list[int] = field(default_factory=list)

    async def progress(self, percent: int) -> None:
        self.seen.append(percent)


@pytest.fixture
async def store(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Store]:
    """The pipeline is the same on both engines: SQLite only."""
    path = tmp_path / "reelgate.db"
    shutil.copy(sqlite_template, path)
    opened = await Store.open(f"sqlite:///{path}", pool_size=4)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def assets(tmp_path: Path, store: Store) -> AssetStore:
    return AssetStore(DirectoryStorage(tmp_path / "assets"), store.uploads)


def pipeline(tmp_path: Path, assets: AssetStore, **changes: Any) -> MediaPipeline:
    settings: Settings = make_settings(tmp_path, "sqlite:///unused", **changes)
    limits = FetchLimits(max_bytes=settings.video_max_bytes, connect_timeout=5, read_timeout=60, total_timeout=60)
    client: httpx.AsyncClient = make_fetch_client(allow_private=True, limits=limits, resolver=fake_dns)
    return MediaPipeline(settings, assets, client=client)


def params(frontal: str, *refer: str) -> CustomElementParams:
    body = {"element_name": "Hero", "element_description": "A character", "reference_type": "image_refer",
            "element_image_list": {"frontal_image": frontal, "refer_images": [{"image_url": r} for r in refer]}}  # fmt: skip
    return CustomElementParams.model_validate(body, context=INTERNAL)


def pictures(server: MediaServer, origin: Origin, host: str, prefix: str, count: int = 4) -> list[str]:
    """``count`` distinct 768x1024 JPEGs, each answered after DELAY."""
    urls = []
    for i in range(count):
        path = f"/{prefix}{i}.jpg"
        server.route(path, origin.slow(mediagen.jpeg(768, 1024, scene=hash(prefix) % 50 + i)))
        urls.append(server.url(path, host=host))
    return urls


async def test_four_pictures_are_fetched_at_once_checked_and_stored(
    server: MediaServer, assets: AssetStore, tmp_path: Path, store: Store
) -> None:
    origin = Origin()
    urls = pictures(server, origin, "origin-a.test", "p")
    media = pipeline(tmp_path, assets)
    reports = Reports()
    try:
        stored = await media.prepare(params(*urls), reports, Job("t1"))
    finally:
        await media.aclose()
    assert origin.most["origin-a.test"] == 4  # all four in flight together, not one after another
    assert reports.seen == [27, 45, 62, 80]  # as the items finish, rising
    assert [s.field for s in stored] == ["model_params.element_image_list.frontal_image",
                                         *(REFER.format(i) for i in range(3))]  # fmt: skip
    assert sorted(await store.uploads.of_task("t1")) == sorted(s.name for s in stored)
    assert all(s.image is not None and (s.image.width, s.image.height) == (768, 1024) for s in stored)
    assert media._hosts == {}  # nothing kept about a host nobody fetches from


async def test_a_task_fetches_at_most_fetches_per_task_items_at_once(
    server: MediaServer, assets: AssetStore, tmp_path: Path
) -> None:
    origin = Origin()
    media = pipeline(tmp_path, assets, fetches_per_task=2)
    try:
        await media.prepare(params(*pictures(server, origin, "origin-a.test", "p")), Reports(), Job("t1"))
    finally:
        await media.aclose()
    assert origin.most["origin-a.test"] == 2


async def test_tasks_share_a_bound_per_origin_host(server: MediaServer, assets: AssetStore, tmp_path: Path) -> None:
    """Two tasks on one host (8 pictures) and one on another, at once: three at a time to each host."""
    origin = Origin()
    media = pipeline(tmp_path, assets, fetches_per_host=3)
    tasks = [("t1", pictures(server, origin, "origin-a.test", "a")),
             ("t2", pictures(server, origin, "origin-a.test", "b")),
             ("t3", pictures(server, origin, "origin-b.test", "c"))]  # fmt: skip
    try:
        done = await asyncio.gather(*(media.prepare(params(*urls), Reports(), Job(t)) for t, urls in tasks))
    finally:
        await media.aclose()
    assert [len(d) for d in done] == [4, 4, 4]
    assert origin.most["origin-a.test"] == 3 and origin.most["origin-b.test"] == 3
    assert origin.most["all"] == 6  # the bound is per host: both hosts were fetched from at once
    assert media._hosts == {}


async def test_uploads_and_hosted_files_are_read_from_storage(
    server: MediaServer, assets: AssetStore, tmp_path: Path, store: Store
) -> None:
    origin = Origin()
    upload = (await assets.save([(mediagen.jpeg(768, 1024, scene=11), "jpg")], account_id=1, task_id="submit"))[0]
    hosted = new_hosted_name(1, 2_000_000_000, "jpg")
    await assets.storage.put(hosted, mediagen.jpeg(768, 1024, scene=12))
    fetched = pictures(server, origin, "origin-a.test", "f", count=1)[0]
    hosted_at = hosted_url(server.url("", host="origin-a.test"), hosted)  # this origin would answer 404
    media = pipeline(tmp_path, assets)
    try:
        stored = await media.prepare(params(f"asset:{upload}", hosted_at, fetched), Reports(), Job("t1"))
    finally:
        await media.aclose()
    assert [seen.path for seen in server.seen] == ["/f0.jpg"]  # only the fetched one went over HTTP
    assert stored[0].name == upload  # stored at submit: not stored again
    assert await assets.read(stored[1].name) == await assets.storage.read(hosted)
    assert sorted(await store.uploads.of_task("t1")) == sorted([stored[1].name, stored[2].name])


async def test_a_failed_item_cancels_the_others_and_nothing_is_stored(
    server: MediaServer, assets: AssetStore, tmp_path: Path, store: Store
) -> None:
    """The frontal picture never answers: only cancelling it lets the failure of a later item through."""
    server.stall("/frontal.jpg")
    server.status("/missing.jpg", 404)
    origin = Origin()
    fine = pictures(server, origin, "origin-a.test", "p", count=1)[0]
    media = pipeline(tmp_path, assets)
    try:
        with pytest.raises(MediaError) as failed:
            await media.prepare(params(server.url("/frontal.jpg", host="origin-a.test"), fine,
                                       server.url("/missing.jpg", host="origin-a.test")), Reports(), Job("t1"))  # fmt: skip
    finally:
        await media.aclose()
    assert failed.value.param == REFER.format(1) and "404 Not Found" in failed.value.message
    assert await store.uploads.of_task("t1") == [] and not (tmp_path / "assets").exists()
    assert media._hosts == {}  # the cancelled fetches gave their places back


async def test_of_several_failed_items_the_earliest_in_the_request_is_reported(
    server: MediaServer, assets: AssetStore, tmp_path: Path
) -> None:
    origin = Origin()
    fine = pictures(server, origin, "origin-a.test", "p", count=2)
    with_credentials = server.url("/x.jpg", host="origin-a.test").replace("://", "://user@")
    other_account = hosted_url("https://cdn.example", new_hosted_name(2, 2_000_000_000, "jpg"))
    media = pipeline(tmp_path, assets)
    try:
        with pytest.raises(MediaError) as failed:
            await media.prepare(params(fine[0], other_account, fine[1], with_credentials), Reports(), Job("t1"))
    finally:
        await media.aclose()
    assert failed.value.param == REFER.format(0) and "another account" in failed.value.message
