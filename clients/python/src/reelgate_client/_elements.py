"""``client.elements``: create an element from reference images or a video, then list, retrieve and delete."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from reelgate_client._base import AsyncAPIClient, SyncAPIClient
from reelgate_client._media import MediaInput, encode_media
from reelgate_client._pages import AsyncPage, AsyncPaginator, SyncPage, page_parts
from reelgate_client._poll import DEFAULT_WAIT_TIMEOUT, ProgressCallback
from reelgate_client._tasks import AsyncTasks, Tasks
from reelgate_client._types import DeletedElement, Element, Task

MODEL = "kling-custom-element"
SUBMIT_PATH = "/v1/videos/generations"


@dataclass(frozen=True)
class ElementSpec:
    """Everything ``elements.create`` takes; ``body()`` reads and encodes the media into the request body."""

    name: str
    description: str
    frontal: MediaInput | None = None
    refer: Sequence[MediaInput] | MediaInput = ()
    video: MediaInput | None = None
    tags: Sequence[str] = ()
    voice_id: str | None = None
    callback_url: str | None = None
    reference_type: str | None = None
    model: str = MODEL

    def refer_items(self) -> list[MediaInput]:
        # One path or URL passed alone would otherwise be iterated character by character.
        if isinstance(self.refer, str | bytes | os.PathLike):
            return [self.refer]
        return list(self.refer)

    def body(self) -> dict[str, Any]:
        kind = self.reference_type or (
            "video_refer" if self.video is not None and self.frontal is None else "image_refer"
        )
        params: dict[str, Any] = {
            "element_name": self.name,
            "element_description": self.description,
            "reference_type": kind,
        }
        if self.frontal is not None or self.refer_items():
            images: dict[str, Any] = {}
            if self.frontal is not None:
                images["frontal_image"] = encode_media(self.frontal, "image", "frontal")
            images["refer_images"] = [
                {"image_url": encode_media(item, "image", f"refer[{i}]")} for i, item in enumerate(self.refer_items())
            ]
            params["element_image_list"] = images
        if self.video is not None:
            params["element_video_list"] = {"refer_videos": [{"video_url": encode_media(self.video, "video", "video")}]}
        if self.tags:
            params["tag_list"] = [{"tag_id": tag} for tag in self.tags]
        if self.voice_id is not None:
            params["element_voice_id"] = self.voice_id
        body: dict[str, Any] = {"model": self.model, "model_params": params}
        if self.callback_url is not None:
            body["callback_url"] = self.callback_url
        return body


def element_path(element_id: str) -> str:
    if not element_id:
        raise ValueError("element_id must not be empty")
    return f"/v1/elements/{quote(str(element_id), safe='')}"


class Elements:
    """Blocking access to the caller's subject elements."""

    def __init__(self, client: SyncAPIClient, tasks: Tasks) -> None:
        self._client = client
        self._tasks = tasks

    def create(
        self,
        *,
        name: str,
        description: str,
        frontal: MediaInput | None = None,
        refer: Sequence[MediaInput] | MediaInput = (),
        video: MediaInput | None = None,
        tags: Sequence[str] = (),
        voice_id: str | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
        reference_type: str | None = None,
        model: str = MODEL,
    ) -> Task:
        """Submit an element-creation task and return it (pending); ``tasks.wait`` it for the element_id.

        Each media item is an http(s) URL, Base64 data, bytes, or a local file path (sent as a Base64 data URI).
        Every create carries an Idempotency-Key (a fresh uuid4 unless given), reused by its retries, so a retry
        after a lost answer returns the same task and is never charged twice.
        """
        spec = ElementSpec(
            name, description, frontal, refer, video, tags, voice_id, callback_url, reference_type, model
        )
        key = idempotency_key or str(uuid.uuid4())
        return Task.from_dict(self._client.request("POST", SUBMIT_PATH, json=spec.body(), idempotency_key=key))

    def create_and_wait(
        self,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_progress: ProgressCallback | None = None,
        **create: Any,
    ) -> Task:
        """``create(**create)`` then ``tasks.wait``; returns the completed task (``.result.element_id``)."""
        task = self.create(**create)
        return self._tasks.wait(task, timeout=timeout, on_progress=on_progress)

    def list(self, *, limit: int | None = None, after: str | None = None) -> SyncPage[Element]:
        items, has_more, last_id, raw = page_parts(
            self._client.request("GET", "/v1/elements", params={"limit": limit, "after": after})
        )
        return SyncPage(
            [Element.from_dict(i) for i in items],
            has_more,
            last_id,
            raw,
            fetch=lambda cursor: self.list(limit=limit, after=cursor),
        )

    def retrieve(self, element_id: str) -> Element:
        return Element.from_dict(self._client.request("GET", element_path(element_id)))

    def delete(self, element_id: str) -> DeletedElement:
        return DeletedElement.from_dict(self._client.request("DELETE", element_path(element_id)))


class AsyncElements:
    """The async twin of Elements."""

    def __init__(self, client: AsyncAPIClient, tasks: AsyncTasks) -> None:
        self._client = client
        self._tasks = tasks

    async def create(
        self,
        *,
        name: str,
        description: str,
        frontal: MediaInput | None = None,
        refer: Sequence[MediaInput] | MediaInput = (),
        video: MediaInput | None = None,
        tags: Sequence[str] = (),
        voice_id: str | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
        reference_type: str | None = None,
        model: str = MODEL,
    ) -> Task:
        """Submit an element-creation task; see Elements.create."""
        spec = ElementSpec(
            name, description, frontal, refer, video, tags, voice_id, callback_url, reference_type, model
        )
        body = await asyncio.to_thread(spec.body)  # reading and encoding files must not block the event loop
        key = idempotency_key or str(uuid.uuid4())
        return Task.from_dict(await self._client.request("POST", SUBMIT_PATH, json=body, idempotency_key=key))

    async def create_and_wait(
        self,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_progress: ProgressCallback | None = None,
        **create: Any,
    ) -> Task:
        task = await self.create(**create)
        return await self._tasks.wait(task, timeout=timeout, on_progress=on_progress)

    def list(self, *, limit: int | None = None, after: str | None = None) -> AsyncPaginator[Element]:
        async def page(cursor: str | None) -> AsyncPage[Element]:
            body = await self._client.request("GET", "/v1/elements", params={"limit": limit, "after": cursor})
            items, has_more, last_id, raw = page_parts(body)
            return AsyncPage([Element.from_dict(i) for i in items], has_more, last_id, raw, fetch=page)

        return AsyncPaginator(lambda: page(after))

    async def retrieve(self, element_id: str) -> Element:
        return Element.from_dict(await self._client.request("GET", element_path(element_id)))

    async def delete(self, element_id: str) -> DeletedElement:
        return DeletedElement.from_dict(await self._client.request("DELETE", element_path(element_id)))
