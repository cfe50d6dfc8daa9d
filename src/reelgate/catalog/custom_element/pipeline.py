"""kling-custom-element's reference media: load each item (fetched safely, or the stored upload), check it, store it.

Shared by every provider of the model: the local engine runs it as its whole job, Kling as its pre-flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import httpx

from reelgate.assets import AssetStore, is_capability
from reelgate.catalog.custom_element.inline import duplicate_problem
from reelgate.catalog.custom_element.params import CustomElementParams, media_items
from reelgate.config import Settings
from reelgate.errors import MediaError
from reelgate.media.fetch import FetchLimits, load_media, make_fetch_client
from reelgate.media.hosted import read_hosted
from reelgate.media.images import ImageInfo, inspect_image
from reelgate.media.inline import ASSET_REF
from reelgate.media.pool import MediaPool
from reelgate.media.video import VideoInfo, inspect_video

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
    data: bytes
    name: str | None  # stored already (an upload), else stored after every item passed
    info: ImageInfo | VideoInfo


@dataclass(frozen=True)
class StoredMedia:
    """One checked media item and the name of its stored copy."""

    field: str
    kind: Literal["image", "video"]
    name: str
    image: ImageInfo | None = None
    video: VideoInfo | None = None
    thumbnail: str | None = None


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
        data = await load_media(source, field=field, kind=kind, limits=self._limits[kind], client=self._client,
                                allow_private=self.settings.allow_private_networks, task_id=job.task_id)  # fmt: skip
        return data, None

    async def _cpu(self, job: Owner, fn: Callable[..., T], *args: Any, payload: bytes | None = None) -> T:
        """CPU-heavy work (decoding, probing, comparing) in the media pool's processes when there is one: on a thread
        of this process it would still hold the GIL for most of its time and stall the event loop's polls and
        callbacks (a near-duplicate comparison on the loop took the callback p99 from 6 to 40 ms)."""
        if self.pool is not None:
            return await self.pool.run(job.account_id, fn, *args, payload=payload, patient=True)
        if payload is None:
            return await asyncio.to_thread(fn, *args)
        return await asyncio.to_thread(fn, payload, *args)

    async def prepare(self, params: CustomElementParams, ctx: Progress, job: Owner) -> list[StoredMedia]:
        """Load and check every item, then store what is not stored yet, registered to ``job``'s task."""
        items = media_items(params)
        checked: list[_Checked] = []
        for index, (field, source, kind) in enumerate(items):
            data, name = await self._load(field, source, kind, job)
            # Decoding a 4K image or probing a video takes 100+ ms of CPU: off the event loop, so the API process
            # keeps answering polls meanwhile.
            limit = self.settings.image_max_bytes if kind == "image" else self.settings.video_max_bytes
            info = await self._cpu(job, check_media, field, kind, limit, payload=data)
            checked.append(_Checked(field, kind, data, name if name and is_capability(name) else None, info))
            await ctx.progress(10 + int(70 * (index + 1) / len(items)))
        images = [(c.field, c.info) for c in checked if isinstance(c.info, ImageInfo)]
        frontal = next((info for field, info in images if field.endswith("frontal_image")), None)
        refers = [(f, i) for f, i in images if not f.endswith("frontal_image")]
        problem = await self._cpu(job, duplicate_problem, frontal, refers)  # 10-20 ms of numpy a pair
        if problem is not None:
            raise problem  # before anything is stored: a refused task leaves no files
        return await self._store(checked, job)

    async def _store(self, checked: list[_Checked], job: Owner) -> list[StoredMedia]:
        """Store fetched items and video thumbnails, registered to the task (uploads were stored at submit)."""
        items: list[tuple[bytes, str]] = []
        for c in checked:
            if c.name is None:
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
