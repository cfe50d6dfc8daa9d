"""The local element engine: fetch media safely, check it, store it content-addressed and register the element."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from reelgate.assets import AssetStore
from reelgate.config import Settings
from reelgate.domain import new_element_id
from reelgate.errors import MediaError
from reelgate.media.fetch import FetchLimits, load_media, make_fetch_client
from reelgate.media.images import ImageInfo, inspect_image
from reelgate.media.inline import ASSET_REF, duplicate_problem
from reelgate.media.video import VideoInfo, inspect_video
from reelgate.params import INTERNAL, CustomElementParams, media_items
from reelgate.providers import Completed, Failed, Job, JobContext, Outcome


@dataclass(frozen=True)
class StoredMedia:
    """One checked media item and the name of its stored copy."""

    field: str
    kind: Literal["image", "video"]
    name: str
    image: ImageInfo | None = None
    video: VideoInfo | None = None
    thumbnail: str | None = None


class MediaPipeline:
    """Loads, checks and stores the reference media of one task; shared by the local engine and Kling's pre-flight."""

    def __init__(self, settings: Settings, assets: AssetStore, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.assets = assets
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

    async def _load(self, field: str, source: str, kind: Literal["image", "video"]) -> bytes:
        if source.startswith(ASSET_REF):
            path = self.assets.path_for(source.removeprefix(ASSET_REF))
            if path is None:
                raise MediaError("service_error", f"{field}: the stored copy of the upload is missing", param=field)
            return path.read_bytes()
        return await load_media(source, field=field, kind=kind, limits=self._limits[kind], client=self._client,
                                allow_private=self.settings.allow_private_networks)  # fmt: skip

    def _check_and_store(self, field: str, data: bytes, kind: Literal["image", "video"]) -> StoredMedia:
        if kind == "image":
            image = inspect_image(data, field=field, max_bytes=self.settings.image_max_bytes)
            return StoredMedia(field, kind, self.assets.put(data, image.ext), image=image)
        video = inspect_video(data, field=field, max_bytes=self.settings.video_max_bytes)
        thumb = self.assets.put(video.thumbnail_jpeg, "jpg")
        return StoredMedia(field, kind, self.assets.put(data, video.ext), video=video, thumbnail=thumb)

    async def prepare(self, params: CustomElementParams, ctx: JobContext) -> list[StoredMedia]:
        items = media_items(params)
        stored: list[StoredMedia] = []
        for index, (field, source, kind) in enumerate(items):
            data = await self._load(field, source, kind)
            # Decoding a 4K image or probing a video takes 100+ ms of CPU: off the event loop, so the API process
            # keeps answering polls meanwhile.
            stored.append(await asyncio.to_thread(self._check_and_store, field, data, kind))
            await ctx.progress(10 + int(70 * (index + 1) / len(items)))
        frontal = next((s.image for s in stored if s.field.endswith("frontal_image")), None)
        refers = [(s.field, s.image) for s in stored if s.image is not None and not s.field.endswith("frontal_image")]
        problem = duplicate_problem(frontal, refers)
        if problem is not None:
            raise problem
        return stored

    def url(self, name: str) -> str:
        return f"{self.settings.public_base_url}/assets/{name}"

    async def aclose(self) -> None:
        await self._client.aclose()


def result_data(params: CustomElementParams, element_id: str, stored: list[StoredMedia], url: Any) -> dict[str, Any]:
    """The contract's ``result_data`` for a created element, linking the stored copies."""
    result: dict[str, Any] = {
        "element_id": element_id,
        "element_name": params.element_name,
        "element_description": params.element_description,
        "reference_type": params.reference_type,
        "tag_list": [t.model_dump() for t in params.tag_list or []],
    }
    images = [s for s in stored if s.kind == "image"]
    if images:
        result["element_image_list"] = {
            "frontal_image": url(images[0].name),
            "refer_images": [{"image_url": url(s.name)} for s in images[1:]],
        }
    for s in stored:
        if s.kind == "video":
            result["element_video_list"] = {
                "refer_videos": [{"video_url": url(s.name)}],
                "thumbnail_url": url(s.thumbnail) if s.thumbnail else None,
            }
    if params.element_voice_id:
        result["element_voice_info"] = {"voice_id": params.element_voice_id}
    return result


class LocalProvider:
    """Creates elements on this machine, with no vendor account."""

    name = "local"

    def __init__(self, pipeline: MediaPipeline) -> None:
        self.pipeline = pipeline

    async def run(self, job: Job, ctx: JobContext) -> Outcome:
        params = CustomElementParams.model_validate(job.params, context=INTERNAL)
        await ctx.progress(5)
        try:
            stored = await self.pipeline.prepare(params, ctx)
        except MediaError as exc:
            return Failed(exc.code, exc.message)
        element_id = new_element_id()
        await ctx.progress(90)
        return Completed(element_id=element_id, result=result_data(params, element_id, stored, self.pipeline.url))

    async def delete_element(self, upstream_id: str, state: dict[str, Any]) -> None:
        return None

    async def aclose(self) -> None:
        await self.pipeline.aclose()
