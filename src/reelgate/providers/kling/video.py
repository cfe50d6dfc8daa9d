"""The video models on Kling's video endpoints: the video kind of the shared task flow (flow.py).

``job.model`` picks the route (configuration, ``video_models`` in the channels file, over ``DEFAULT_ROUTES``): the
endpoint (text2video, image2video, motion-control, omni-video) and Kling's ``model_name``. ``job.params`` holds the
request's EvoLink fields (top-level ``prompt``, ``duration``, ``quality``, ``sound``, media URLs …, and
``model_params``), ``upstream.channel`` when the task's elements pin it to a channel.

Phases after the shared ones: Kling's success saves ``downloading`` with the result files (Kling's video ids and
expiring URLs: operators' data, never the public result), then each file is streamed into storage, saved one by
one, retried with back-off; the task completes with ``results`` = Reelgate's URLs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from reelgate.catalog.custom_element import MediaPipeline
from reelgate.config import ConfigError
from reelgate.errors import MediaError
from reelgate.media.fetch import FetchLimits, load_media, make_fetch_client
from reelgate.media.hosted import read_hosted
from reelgate.media.inline import ASSET_REF
from reelgate.providers import Completed, Failed, Job, Outcome, Pending
from reelgate.providers.kling.api import KlingTask
from reelgate.providers.kling.channels import KlingConfig, VideoRoute
from reelgate.providers.kling.flow import Hooks, Run, State, hand_off, jitter
from reelgate.providers.kling.inputs import Input, VideoFacts, VideoRules, check_image, check_video, input_items
from reelgate.providers.kling.results import DownloadFailed, ResultTooLarge, store_result

T = TypeVar("T")
log = logging.getLogger("reelgate.kling")
MB = 1024 * 1024

PATHS = {
    "text2video": "/v1/videos/text2video",
    "image2video": "/v1/videos/image2video",
    "motion-control": "/v1/videos/motion-control",
    "omni-video": "/v1/videos/omni-video",
}
DEFAULT_ROUTES = {
    "kling-v3-text-to-video": VideoRoute(endpoint="text2video", model_name="kling-v3"),
    "kling-v3-image-to-video": VideoRoute(endpoint="image2video", model_name="kling-v3"),
    "kling-v3-motion-control": VideoRoute(endpoint="motion-control", model_name="kling-v3"),
    "kling-o3-text-to-video": VideoRoute(endpoint="omni-video", model_name="kling-v3-omni"),
    "kling-o3-image-to-video": VideoRoute(endpoint="omni-video", model_name="kling-v3-omni"),
    "kling-o3-reference-to-video": VideoRoute(endpoint="omni-video", model_name="kling-v3-omni"),
    "kling-o3-video-edit": VideoRoute(endpoint="omni-video", model_name="kling-v3-omni"),
}
# The request's top-level fields each endpoint takes as they are (Kling refuses unknown parameters).
PLAIN_FIELDS = {
    "text2video": ("prompt", "negative_prompt", "aspect_ratio", "sound"),
    "image2video": ("prompt", "negative_prompt", "sound"),
    "omni-video": ("prompt", "aspect_ratio", "sound"),
    "motion-control": ("prompt",),
}
OMNI_ASPECT = "16:9"  # Kling's Omni endpoint needs one without a first frame or a base video; EvoLink's default
MODES = {"720p": "std", "1080p": "pro", "4k": "4k"}  # EvoLink's quality → Kling's mode
VIDEO_RULES = {
    "kling-v3-motion-control": VideoRules(
        min_seconds=3, max_seconds=30, min_side=340, max_side=3850, max_bytes=100 * MB
    ),
    "kling-o3-video-edit": VideoRules(min_seconds=3, max_seconds=10, min_side=720, max_side=2160),
}
EDIT_MODEL = "kling-o3-video-edit"  # billed on its input video's length; Kling keeps that video's length
NO_VIDEO = "The provider reported success but returned no video."
TOO_LARGE = "The generated video is larger than this gateway stores."
NOT_FETCHED = "The generated video could not be retrieved from the provider; try again later."


def _yes_no(value: Any, default: bool) -> str:
    return "yes" if (default if value is None else bool(value)) else "no"


class VideoKind:
    """The seven video models: media pre-flight, Kling's body per endpoint, and the results brought home."""

    carry: tuple[str, ...] = ("media", "pinned", "input_seconds", "endpoint")

    def __init__(self, config: KlingConfig, pipeline: MediaPipeline, hooks: Hooks) -> None:
        self.config = config
        self.pipeline = pipeline
        self.hooks = hooks
        unknown = sorted(set(config.video_models) - set(DEFAULT_ROUTES))
        if unknown:  # a typo must not leave the model on its default route unnoticed
            raise ConfigError(f"Kling video_models: {unknown[0]!r} is not a video model; known: "
                              f"{', '.join(sorted(DEFAULT_ROUTES))}")  # fmt: skip
        self.routes = {**DEFAULT_ROUTES, **config.video_models}
        settings = pipeline.settings
        self._limits = {
            kind: FetchLimits(
                max_bytes=settings.image_max_bytes if kind == "image" else settings.video_max_bytes,
                connect_timeout=settings.fetch_connect_timeout,
                read_timeout=settings.fetch_read_timeout,
                total_timeout=settings.fetch_total_timeout,
            )  # fmt: skip
            for kind in ("image", "video")
        }
        self._fetch = make_fetch_client(allow_private=settings.allow_private_networks, limits=self._limits["video"])
        results = FetchLimits(max_bytes=config.result_max_bytes, connect_timeout=config.download_timeout,
                              read_timeout=config.download_timeout, total_timeout=config.download_total)  # fmt: skip
        self._download = make_fetch_client(allow_private=settings.allow_private_networks, limits=results)

    def serves(self, model: str) -> bool:
        return model in self.routes

    def parse(self, job: Job) -> dict[str, Any]:
        return job.params  # validated at submit by the model's catalog folder

    def path(self, run: Run) -> str:
        # The endpoint the task was sent to, saved at its pre-flight: a route changed meanwhile must not make its
        # open tasks look missing.
        endpoint = run.job.state.get("endpoint") or self.routes[run.job.model].endpoint
        return PATHS[str(endpoint)]

    def pinned(self, run: Run) -> str | None:
        upstream = run.params.get("upstream") or {}
        channel = upstream.get("channel") if isinstance(upstream, dict) else None
        return channel if isinstance(channel, str) and channel else None

    # --- pre-flight: the media inputs ------------------------------------------------------------------------

    async def preflight(self, run: Run) -> State:
        """Fetch and check every media input, then store the copies (nothing is stored for a refused task)."""
        items = input_items(run.params)
        checked: list[tuple[Input, bytes, str | None, str]] = []
        seconds: float | None = None
        rules = VIDEO_RULES.get(run.job.model, VideoRules(max_bytes=self.pipeline.settings.video_max_bytes))
        for index, item in enumerate(items):
            data, name = await self._load(item, run.job.account_id)
            if item.kind == "image":
                ext = await self._cpu(
                    run, check_image, item.field, self.pipeline.settings.image_max_bytes, payload=data
                )
            else:
                facts: VideoFacts = await self._cpu(run, check_video, item.field, rules, payload=data)
                ext, seconds = facts.ext, facts.duration if seconds is None else seconds
            checked.append((item, data, name, ext))
            await run.ctx.progress(10 + int(70 * (index + 1) / len(items)))
        fresh = [(data, ext) for _, data, name, ext in checked if name is None]
        names = iter(await self.pipeline.assets.save(fresh, account_id=run.job.account_id, task_id=run.job.task_id))
        media = [{"field": item.field, "kind": item.kind, "name": name or next(names)}
                 for item, _, name, _ in checked]  # fmt: skip
        return {"media": media, "input_seconds": seconds, "endpoint": self.routes[run.job.model].endpoint}

    async def _load(self, item: Input, account_id: int) -> tuple[bytes, str | None]:
        if item.source.startswith(ASSET_REF):
            name = item.source.removeprefix(ASSET_REF)
            data = await self.pipeline.assets.read(name)
            if data is None:
                raise MediaError("service_error", f"{item.field}: the stored copy of the upload is missing",
                                 param=item.field)  # fmt: skip
            return data, name
        hosted = await read_hosted(self.pipeline.assets.storage, item.source, field=item.field, kind=item.kind,
                                   account_id=account_id, max_bytes=self._limits[item.kind].max_bytes)  # fmt: skip
        if hosted is not None:  # a file API upload: read from storage, never fetched over HTTP
            return hosted, None
        private = self.pipeline.settings.allow_private_networks
        data = await load_media(item.source, field=item.field, kind=item.kind, limits=self._limits[item.kind],
                                client=self._fetch, allow_private=private)  # fmt: skip
        return data, None

    async def _cpu(self, run: Run, fn: Callable[..., T], *args: Any, payload: bytes) -> T:
        """Decoding and probing in the media pool's processes when there is one (as the element pipeline does)."""
        if self.pipeline.pool is not None:
            return await self.pipeline.pool.run(run.job.account_id, fn, *args, payload=payload, patient=True)
        return await asyncio.to_thread(fn, payload, *args)

    # --- the create body -------------------------------------------------------------------------------------

    async def body(self, run: Run, state: State) -> dict[str, Any]:
        """Kling's create body for the model's endpoint, media handed over as the element's are."""
        p, model = run.params, run.job.model
        route = self.routes[model]
        endpoint = str(state.get("endpoint") or route.endpoint)  # as saved at the pre-flight, like path()
        sources = {item.field: item.source for item in input_items(p)}
        handed = {m["field"]: await self._handoff(sources[m["field"]], m["kind"], m["name"]) for m in state["media"]}
        body: dict[str, Any] = {"model_name": route.model_name, "external_task_id": run.job.task_id}
        body.update({key: p[key] for key in PLAIN_FIELDS[endpoint] if p.get(key) is not None})
        body["mode"] = MODES.get(str(p.get("quality") or "720p"), "std")
        if p.get("duration") is not None and model != EDIT_MODEL and endpoint != "motion-control":
            body["duration"] = str(p["duration"])
        body.update(_model_params(p.get("model_params") or {}, shots=endpoint != "motion-control"))
        body.update(_media(endpoint, model, p, handed))
        if endpoint == "omni-video" and "aspect_ratio" not in body and _needs_aspect(body):
            body["aspect_ratio"] = OMNI_ASPECT
        callback = self.hooks.callback_url(run.job.task_id)
        if callback:
            body["callback_url"] = callback
        return body

    async def _handoff(self, source: str, kind: str, name: str) -> str:
        return await hand_off(self.pipeline, self.config.media_handoff, source, kind, name)

    # --- results ---------------------------------------------------------------------------------------------

    async def succeeded(self, run: Run, state: State, task: KlingTask) -> Outcome:
        if not task.videos or any(not v.url for v in task.videos):
            return Failed("generation_failed_no_content", NO_VIDEO)
        watermark = (run.params.get("model_params") or {}).get("watermark_info") or {}
        files: list[dict[str, str]] = []
        for v in task.videos:
            files.append({"video_id": v.id, "url": v.url, "duration": v.duration, "variant": "video"})
            if watermark.get("enabled") and v.watermark_url:
                files.append({"video_id": v.id, "url": v.watermark_url, "duration": v.duration, "variant": "watermark"})
        downloading = {**state, "phase": "downloading", "files": files, "stored": [], "download_tries": 0}
        await run.ctx.save_state(downloading)
        await run.ctx.progress(95)
        return await self._bring_home(run, downloading)

    async def resume(self, run: Run, state: State) -> Outcome:
        if state.get("phase") == "downloading":
            return await self._bring_home(run, state)
        log.error("unknown Kling video task phase", extra={"task_id": run.job.task_id, "phase": state.get("phase")})
        return Failed("service_error", "The task's saved progress could not be read.")

    async def _bring_home(self, run: Run, state: State) -> Outcome:
        """Stream each file not stored yet; each stored one is saved at once, so a restart does not fetch it again."""
        stored: list[str] = list(state.get("stored", []))
        for file in state["files"][len(stored) :]:
            try:
                name, size = await store_result(
                    self._download, file["url"], self.pipeline.assets, account_id=run.job.account_id,
                    task_id=run.job.task_id, max_bytes=self.config.result_max_bytes,
                    total_timeout=self.config.download_total,
                    allow_private=self.pipeline.settings.allow_private_networks,
                )  # fmt: skip
            except ResultTooLarge as exc:
                log.error("Kling result too large", extra={"task_id": run.job.task_id, "error": str(exc)})
                return Failed("service_error", TOO_LARGE)
            except DownloadFailed as exc:
                return self._download_failed(run, {**state, "stored": stored}, exc)
            log.info("Kling result stored", extra={"task_id": run.job.task_id, "bytes": size})
            stored.append(name)
            state = {**state, "stored": stored}
            await run.ctx.save_state(state)
        billed = state.get("input_seconds") if run.job.model == EDIT_MODEL else None
        urls = [self.pipeline.url(name) for name in stored]
        return Completed({"results": urls}, billed_seconds=float(billed) if billed is not None else None)

    def _download_failed(self, run: Run, state: State, exc: DownloadFailed) -> Outcome:
        tries = int(state.get("download_tries", 0)) + 1
        log.warning("Kling result download failed", extra={"task_id": run.job.task_id, "error": str(exc),
                                                           "tries": tries})  # fmt: skip
        if tries > self.config.download_retries:
            return Failed("service_error", NOT_FETCHED)
        delay = min(self.config.retry_max, self.config.retry_initial * 2 ** (tries - 1))
        return Pending(jitter(delay), {**state, "download_tries": tries})

    async def aclose(self) -> None:
        await self._fetch.aclose()
        await self._download.aclose()


def _needs_aspect(body: dict[str, Any]) -> bool:
    frames = [image.get("type") for image in body.get("image_list", [])]
    base = any(video.get("refer_type") == "base" for video in body.get("video_list", []))
    return "first_frame" not in frames and not base


def _model_params(mp: dict[str, Any], *, shots: bool) -> dict[str, Any]:
    """``model_params`` as Kling names them; element ids as exact integers from their decimal strings."""
    body: dict[str, Any] = {}
    for key in ("multi_shot", "shot_type", "multi_prompt", "watermark_info") if shots else ("watermark_info",):
        if mp.get(key) is not None:
            body[key] = mp[key]
    if mp.get("element_list"):
        body["element_list"] = [{"element_id": int(str(e["element_id"]))} for e in mp["element_list"]]
    return body


def _media(endpoint: str, model: str, p: dict[str, Any], handed: dict[str, str]) -> dict[str, Any]:
    """The media fields of each endpoint's body."""
    images = [handed[f] for f in sorted((f for f in handed if f.startswith("image_urls[")), key=_index)]
    if endpoint == "image2video":
        return {
            "image": handed["image_start"],
            **({"image_tail": handed["image_end"]} if "image_end" in handed else {}),
        }
    if endpoint == "motion-control":
        mp = p.get("model_params") or {}
        return {"image_url": images[0], "video_url": handed["video_urls[0]"],
                "character_orientation": mp.get("character_orientation"),
                "keep_original_sound": _yes_no(mp.get("keep_sound"), True)}  # fmt: skip
    if endpoint == "omni-video":
        image_list = [{"image_url": handed["image_start"], "type": "first_frame"}] if "image_start" in handed else []
        if "image_end" in handed:
            image_list.append({"image_url": handed["image_end"], "type": "end_frame"})
        image_list += [{"image_url": url} for url in images]
        media: dict[str, Any] = {"image_list": image_list} if image_list else {}
        if "video_url" in handed:
            media["video_list"] = [{"video_url": handed["video_url"],
                                    "refer_type": "base" if model == EDIT_MODEL else "feature",
                                    "keep_original_sound": _yes_no(p.get("keep_original_sound"), True)}]  # fmt: skip
        return media
    return {}


def _index(field: str) -> int:
    return int(field[field.index("[") + 1 : -1])
