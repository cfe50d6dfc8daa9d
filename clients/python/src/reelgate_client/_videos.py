"""``client.videos``: generate a video with the Kling models that use elements, wait for it, and download it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelgate_client._base import AsyncAPIClient, SyncAPIClient
from reelgate_client._download import AsyncDownloader, Downloader, Target
from reelgate_client._errors import MediaInputError
from reelgate_client._poll import DEFAULT_WAIT_TIMEOUT, ProgressCallback
from reelgate_client._tasks import AsyncTasks, TaskRef, Tasks
from reelgate_client._types import VideoTask

SUBMIT_PATH = "/v1/videos/generations"
# A video takes minutes upstream; the wait's default limit is longer than an element's.
VIDEO_WAIT_TIMEOUT = max(DEFAULT_WAIT_TIMEOUT, 1800.0)


@dataclass(frozen=True)
class VideoSpec:
    """Everything ``videos.create`` takes; ``body()`` is EvoLink's request: most fields at the top level, the
    elements (and the model's own options) in ``model_params``."""

    model: str
    prompt: str | None = None
    elements: Sequence[str] = ()
    duration: int | None = None
    quality: str | None = None
    sound: str | bool | None = None
    aspect_ratio: str | None = None
    negative_prompt: str | None = None
    image_start: str | None = None
    image_end: str | None = None
    image_urls: Sequence[str] = ()
    video_url: str | None = None
    video_urls: Sequence[str] = ()
    keep_original_sound: bool | None = None
    watermark: bool | None = None
    model_params: Mapping[str, Any] = field(default_factory=dict)
    callback_url: str | None = None

    def body(self) -> dict[str, Any]:
        top: dict[str, Any] = {
            "model": self.model,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "duration": self.duration,
            "quality": self.quality,
            "sound": _sound(self.sound),
            "aspect_ratio": self.aspect_ratio,
            "image_start": _url(self.image_start, "image_start"),
            "image_end": _url(self.image_end, "image_end"),
            "video_url": _url(self.video_url, "video_url"),
            "keep_original_sound": self.keep_original_sound,
            "callback_url": self.callback_url,
        }
        body = {key: value for key, value in top.items() if value is not None}
        if self.image_urls:
            body["image_urls"] = [_url(u, f"image_urls[{i}]") for i, u in enumerate(_listed(self.image_urls))]
        if self.video_urls:
            body["video_urls"] = [_url(u, f"video_urls[{i}]") for i, u in enumerate(_listed(self.video_urls))]
        params = dict(self.model_params)
        if self.elements:
            # Ids stay strings: Kling's are 64-bit and would lose digits as JSON numbers in some readers.
            params["element_list"] = [{"element_id": str(e)} for e in _listed(self.elements)]
        if self.watermark is not None:
            params["watermark_info"] = {"enabled": self.watermark}
        if params:
            body["model_params"] = params
        return body


def _listed(values: Sequence[str]) -> list[str]:
    # One id or URL passed alone would otherwise be iterated character by character.
    return [values] if isinstance(values, str) else list(values)


def _sound(value: str | bool | None) -> str | None:
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


def _url(value: str | None, name: str) -> str | None:
    """Video models take media by URL (EvoLink's ``format: uri``); a local file is a mistake worth naming here."""
    if value is None:
        return None
    text = str(value).strip()
    if not text.lower().startswith(("http://", "https://")):
        raise MediaInputError(
            f"{name}: video models take media as http(s) URLs, got {text[:60]!r} "
            "(upload a local image first: POST /api/v1/files/upload/stream)"
        )
    return text


class Videos:
    """Blocking access to the video models: create, wait, download."""

    def __init__(self, client: SyncAPIClient, tasks: Tasks) -> None:
        self._client = client
        self._tasks = tasks
        self._downloader = Downloader(client, tasks)

    def create(
        self,
        *,
        model: str,
        prompt: str | None = None,
        elements: Sequence[str] = (),
        duration: int | None = None,
        quality: str | None = None,
        sound: str | bool | None = None,
        aspect_ratio: str | None = None,
        negative_prompt: str | None = None,
        image_start: str | None = None,
        image_end: str | None = None,
        image_urls: Sequence[str] = (),
        video_url: str | None = None,
        video_urls: Sequence[str] = (),
        keep_original_sound: bool | None = None,
        watermark: bool | None = None,
        model_params: Mapping[str, Any] | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> VideoTask:
        """Submit a video task and return it (pending); ``videos.wait`` it for ``results``.

        ``elements`` are element ids (``<<<element_1>>>`` in the prompt is the first); ``model_params`` adds the
        model's own options (multi_shot, character_orientation, ...). Media are http(s) URLs. Omitted fields take
        the model's defaults on the server. Like every create, it carries an Idempotency-Key (a fresh uuid4 unless
        given) reused by its retries, so a lost answer never costs a second video.
        """
        spec = VideoSpec(
            model, prompt, elements, duration, quality, sound, aspect_ratio, negative_prompt, image_start, image_end,
            image_urls, video_url, video_urls, keep_original_sound, watermark, model_params or {}, callback_url,
        )  # fmt: skip
        key = idempotency_key or str(uuid.uuid4())
        return VideoTask.from_dict(self._client.request("POST", SUBMIT_PATH, json=spec.body(), idempotency_key=key))

    def wait(
        self,
        task: TaskRef,
        *,
        timeout: float | None = VIDEO_WAIT_TIMEOUT,
        on_progress: ProgressCallback | None = None,
    ) -> VideoTask:
        """``tasks.wait`` for a video task: the completed task, with ``results`` (TaskFailedError if it fails)."""
        return VideoTask.from_task(self._tasks.wait(task, timeout=timeout, on_progress=on_progress))

    def create_and_wait(
        self,
        *,
        timeout: float | None = VIDEO_WAIT_TIMEOUT,
        on_progress: ProgressCallback | None = None,
        **create: Any,
    ) -> VideoTask:
        task = self.create(**create)
        return self.wait(task, timeout=timeout, on_progress=on_progress)

    def download(self, task_or_url: Target, path: str | Path, *, index: int = 0) -> Path:
        """Save a result to ``path`` and return it: a completed task (or its id) gives its ``results[index]``.

        The video is streamed to a temporary file beside ``path`` and renamed into place once whole, so memory
        stays bounded whatever its size and ``path`` never holds half a video. A dropped connection restarts it.
        """
        return self._downloader.download(task_or_url, Path(path), index)


class AsyncVideos:
    """The async twin of Videos."""

    def __init__(self, client: AsyncAPIClient, tasks: AsyncTasks) -> None:
        self._client = client
        self._tasks = tasks
        self._downloader = AsyncDownloader(client, tasks)

    async def create(
        self,
        *,
        model: str,
        prompt: str | None = None,
        elements: Sequence[str] = (),
        duration: int | None = None,
        quality: str | None = None,
        sound: str | bool | None = None,
        aspect_ratio: str | None = None,
        negative_prompt: str | None = None,
        image_start: str | None = None,
        image_end: str | None = None,
        image_urls: Sequence[str] = (),
        video_url: str | None = None,
        video_urls: Sequence[str] = (),
        keep_original_sound: bool | None = None,
        watermark: bool | None = None,
        model_params: Mapping[str, Any] | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> VideoTask:
        """Submit a video task; see Videos.create."""
        spec = VideoSpec(
            model, prompt, elements, duration, quality, sound, aspect_ratio, negative_prompt, image_start, image_end,
            image_urls, video_url, video_urls, keep_original_sound, watermark, model_params or {}, callback_url,
        )  # fmt: skip
        key = idempotency_key or str(uuid.uuid4())
        body = spec.body()  # URLs only: nothing to read from disk, so no thread needed
        return VideoTask.from_dict(await self._client.request("POST", SUBMIT_PATH, json=body, idempotency_key=key))

    async def wait(
        self,
        task: TaskRef,
        *,
        timeout: float | None = VIDEO_WAIT_TIMEOUT,
        on_progress: ProgressCallback | None = None,
    ) -> VideoTask:
        return VideoTask.from_task(await self._tasks.wait(task, timeout=timeout, on_progress=on_progress))

    async def create_and_wait(
        self,
        *,
        timeout: float | None = VIDEO_WAIT_TIMEOUT,
        on_progress: ProgressCallback | None = None,
        **create: Any,
    ) -> VideoTask:
        task = await self.create(**create)
        return await self.wait(task, timeout=timeout, on_progress=on_progress)

    async def download(self, task_or_url: Target, path: str | Path, *, index: int = 0) -> Path:
        """Save a result to ``path``; see Videos.download."""
        return await self._downloader.download(task_or_url, Path(path), index)
