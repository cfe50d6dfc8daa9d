"""kling-custom-element's reference media: load each item (fetched safely, or the stored upload), check it, store it.

Shared by every provider of the model: the local engine runs it as its whole job, Kling as its pre-flight. The items
of a task load at once (``fetches_per_task``, and ``fetches_per_host`` to one origin host across this process's
tasks), and each is checked as soon as its bytes arrive: four pictures from an origin that answers in 300 ms take
0.3 s, not 1.2 s. CPU work goes to the media pool's processes where there is one, else to ``media_threads`` threads
of this process, shared fairly across accounts (media/fair.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from reelgate.assets import AssetStore, is_capability
from reelgate.catalog.custom_element.inline import duplicate_problem
from reelgate.catalog.custom_element.params import CustomElementParams, media_items
from reelgate.config import Settings
from reelgate.errors import MediaError
from reelgate.media.fair import FairGate
from reelgate.media.fetch import FetchLimits, load_media, make_fetch_client
from reelgate.media.hosted import read_hosted
from reelgate.media.images import ImageInfo, inspect_image
from reelgate.media.inline import ASSET_REF
from reelgate.media.pool import MediaPool
from reelgate.media.video import VideoInfo, inspect_video
from reelgate.params import is_url

T = TypeVar("T")


class Owner(Protocol):
    """Whose media these are (a provider's Job): stored copies are registered to the task, work is fair by account."""

    @property
    def task_id(self) -> str: ...

    @property
    def account_id(self) -> int: ...


class Progress(Protocol):
    """Where progress is reported (a provider's JobContext)."""

    async def progress(self, percent: int) -> None: ...


@dataclass(frozen=True)
class _Checked:
    field: str
    kind: Literal["image", "video"]
    data: bytes | None  # the bytes to store once every item passed; None when stored already (``name``)
    name: str | None  # stored already (an upload), else stored after every item passed
    info: ImageInfo | VideoInfo


@dataclass
class _HostGate:
    """Fetches at once to one origin host, and how many fetches use the entry (dropped at none)."""

    places: asyncio.Semaphore
    users: int = 0


class _Reporter:
    """Progress as the items finish: one report at a time, each above the last, in whatever order they finish."""

    def __init__(self, ctx: Progress, total: int) -> None:
        self._ctx, self._total, self._done = ctx, total, 0
        self._lock = asyncio.Lock()

    async def finished(self) -> None:
        async with self._lock:
            self._done += 1
            await self._ctx.progress(10 + int(70 * self._done / self._total))


@dataclass(frozen=True)
class StoredMedia:
    """One checked media item and the name of its stored copy."""

    field: str
    kind: Literal["image", "video"]
    name: str
    image: ImageInfo | None = None
    video: VideoInfo | None = None
    thumbnail: str | None = None


def _origin_host(source: str) -> str | None:
    """The host an http(s) URL names (load_media refuses a malformed one), None for anything else."""
    if not is_url(source):
        return None
    try:
        return urlsplit(source).hostname
    except ValueError:
        return None


def check_media(data: bytes, field: str, kind: Literal["image", "video"], max_bytes: int) -> ImageInfo | VideoInfo:
    """Inspect one item by its kind (a module-level function, so a pool process can run it)."""
    if kind == "image":
        return inspect_image(data, field=field, max_bytes=max_bytes)
    return inspect_video(data, field=field, max_bytes=max_bytes)


class MediaPipeline:
    """Loads, checks and stores the reference media of one task."""

    def __init__(self, settings: Settings, assets: AssetStore, client: httpx.AsyncClient | None = None,
                 pool: MediaPool | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.assets = assets
        self.pool = pool
        self._limits = {
            kind: FetchLimits(
                max_bytes=settings.image_max_bytes if kind == "image" else settings.video_max_bytes,
                connect_timeout=settings.fetch_connect_timeout,
                read_timeout=settings.fetch_read_timeout,
                total_timeout=settings.fetch_total_timeout,
            )
            for kind in ("image", "video")
        }
        self._client = client or make_fetch_client(
            allow_private=settings.allow_private_networks, limits=self._limits["video"]
        )
        self._hosts: dict[str, _HostGate] = {}  # shared by this process's tasks; an entry lives while it is used
        self._threads = FairGate(settings.media_threads)  # CPU jobs on threads, when there is no pool

    async def _load(self, field: str, source: str, kind: Literal["image", "video"],
                    job: Owner) -> tuple[bytes, str | None]:  # fmt: skip
        """The item's bytes, and its stored name when it was uploaded with the task (stored already)."""
        if source.startswith(ASSET_REF):
            name = source.removeprefix(ASSET_REF)
            data = await self.assets.read(name)
            if data is None:
                raise MediaError("service_error", f"{field}: the stored copy of the upload is missing", param=field)
            return data, name
        hosted = await read_hosted(self.assets.storage, source, field=field, kind=kind, account_id=job.account_id,
                                   max_bytes=self._limits[kind].max_bytes)  # fmt: skip
        if hosted is not None:  # a file API upload: read from storage, never fetched over HTTP
            return hosted, None
        allow_private = self.settings.allow_private_networks
        async with self._host_place(source):
            data = await load_media(source, field=field, kind=kind, limits=self._limits[kind], client=self._client,
                                    allow_private=allow_private, task_id=job.task_id)  # fmt: skip
        return data, None

    @contextlib.asynccontextmanager
    async def _host_place(self, source: str) -> AsyncIterator[None]:
        """One of ``fetches_per_host`` places for the origin host of ``source`` (none needed for inline data)."""
        host = _origin_host(source)
        if host is None:
            yield
            return
        gate = self._hosts.get(host)
        if gate is None:
            gate = self._hosts[host] = _HostGate(asyncio.Semaphore(self.settings.fetches_per_host))
        gate.users += 1
        try:
            async with gate.places:
                yield
        finally:
            gate.users -= 1
            if not gate.users:  # nobody fetches from or waits for this host: forget it
                del self._hosts[host]

    async def _cpu(self, job: Owner, fn: Callable[..., T], *args: Any, payload: bytes | None = None) -> T:
        """CPU-heavy work (decoding, probing, comparing) in the media pool's processes when there is one (the API
        process: on its own threads the work would hold the GIL for most of its time and stall the event loop's
        polls, a near-duplicate comparison took the callback p99 from 6 to 40 ms), else on ``media_threads`` threads
        of this worker process, taken in fair turns across accounts."""
        if self.pool is not None:
            return await self.pool.run(job.account_id, fn, *args, payload=payload, patient=True)
        call = functools.partial(fn, *args) if payload is None else functools.partial(fn, payload, *args)
        account = job.account_id
        await self._threads.acquire(account)
        # A thread cannot be stopped: when the caller is cancelled (a sibling item failed) the work runs on, and so
        # it keeps its slot until it ends, so that no more than ``media_threads`` jobs ever run at once.
        work = asyncio.ensure_future(asyncio.to_thread(call))
        work.add_done_callback(functools.partial(self._thread_done, account))
        return await asyncio.shield(work)

    def _thread_done(self, account: int, work: asyncio.Future[Any]) -> None:
        if not work.cancelled():
            work.exception()  # taken here: a cancelled caller never awaits it, and asyncio would log it as lost
        self._threads.release(account)

    async def prepare(self, params: CustomElementParams, ctx: Progress, job: Owner) -> list[StoredMedia]:
        """Load and check every item, then store what is not stored yet, registered to ``job``'s task."""
        checked = await self._check_all(media_items(params), ctx, job)
        images = [(c.field, c.info) for c in checked if isinstance(c.info, ImageInfo)]
        frontal = next((info for field, info in images if field.endswith("frontal_image")), None)
        refers = [(f, i) for f, i in images if not f.endswith("frontal_image")]
        problem = await self._cpu(job, duplicate_problem, frontal, refers)  # 10-20 ms of numpy a pair
        if problem is not None:
            raise problem  # before anything is stored: a refused task leaves no files
        return await self._store(checked, job)

    async def _check_all(self, items: list[tuple[str, str, Literal["image", "video"]]], ctx: Progress,
                         job: Owner) -> list[_Checked]:  # fmt: skip
        """Every item loaded and checked, at once up to ``fetches_per_task`` loads; the first failure stops the rest."""
        fetches = asyncio.Semaphore(self.settings.fetches_per_task)
        reporter = _Reporter(ctx, len(items))
        failures: dict[int, Exception] = {}

        async def one(index: int, field: str, source: str, kind: Literal["image", "video"]) -> _Checked:
            try:
                checked = await self._check_one(field, source, kind, job, fetches)
                await reporter.finished()
                return checked
            except Exception as exc:
                failures[index] = exc
                raise

        try:
            async with asyncio.TaskGroup() as group:
                running = [group.create_task(one(i, *item)) for i, item in enumerate(items)]
        except BaseExceptionGroup:
            if not failures:
                raise
            # The first failure cancels the other items (their work is wasted once the task fails), so which items
            # fail depends on timing. Of those that did, the one earliest in the request's item order is reported,
            # not whichever failed first: two bad items racing give one answer, and when the first item is bad and
            # fails fast (a refused URL, a missing file) the task says so, as the one-by-one loop did.
            raise failures[min(failures)] from None
        return [task.result() for task in running]

    async def _check_one(self, field: str, source: str, kind: Literal["image", "video"], job: Owner,
                         fetches: asyncio.Semaphore) -> _Checked:  # fmt: skip
        async with fetches:
            data, name = await self._load(field, source, kind, job)
        # Decoding a 4K image or probing a video takes 100+ ms of CPU: off the event loop, so the process keeps
        # answering meanwhile. The load's place is free already: the next item's bytes arrive during this check.
        limit = self.settings.image_max_bytes if kind == "image" else self.settings.video_max_bytes
        info = await self._cpu(job, check_media, field, kind, limit, payload=data)
        if name is not None and is_capability(name):
            return _Checked(field, kind, None, name, info)  # stored already: its bytes are needed no more
        return _Checked(field, kind, data, None, info)

    async def _store(self, checked: list[_Checked], job: Owner) -> list[StoredMedia]:
        """Store fetched items and video thumbnails, registered to the task (uploads were stored at submit)."""
        items: list[tuple[bytes, str]] = []
        for c in checked:
            if c.data is not None:
                items.append((c.data, c.info.ext))
            if isinstance(c.info, VideoInfo):
                items.append((c.info.thumbnail_jpeg, "jpg"))
        names = iter(await self.assets.save(items, account_id=job.account_id, task_id=job.task_id))
        stored: list[StoredMedia] = []
        for c in checked:  # the names come back in the order of ``items``
            name = c.name or next(names)
            if isinstance(c.info, VideoInfo):
                stored.append(StoredMedia(c.field, c.kind, name, video=c.info, thumbnail=next(names)))
            else:
                stored.append(StoredMedia(c.field, c.kind, name, image=c.info))
        return stored

    def url(self, name: str) -> str:
        return self.assets.url(name, self.settings.public_base_url)

    async def aclose(self) -> None:
        await self._client.aclose()
