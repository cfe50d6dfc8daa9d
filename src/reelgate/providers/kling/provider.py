"""The Kling provider: one provider named "kling" for every Kling model. It runs each task through the shared
task flow (flow.py: pre-flight, create exactly once, poll with back-off, map the outcome) with the task's kind: the
element kind here (kling-custom-element), the video kind (video.py) for the video models, chosen by ``job.model``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from reelgate.catalog.custom_element import CustomElementParams, MediaPipeline, StoredMedia, media_items, result_data
from reelgate.config import ConfigError, Settings
from reelgate.params import INTERNAL
from reelgate.providers import (
    ChannelBalance,
    ChannelState,
    Completed,
    Failed,
    Job,
    JobContext,
    NewElement,
    Outcome,
    ResourcePack,
)
from reelgate.providers.kling import NAME
from reelgate.providers.kling.api import ELEMENTS_PATH, KlingError, KlingTask
from reelgate.providers.kling.channels import (
    Busy,
    Channel,
    ChannelPool,
    KlingConfig,
    build_pool,
    config_from_env,
    load_config_file,
)
from reelgate.providers.kling.flow import Hooks, Run, State, TaskFlow, hand_off
from reelgate.providers.kling.video import VideoKind
from reelgate.providers.upstream import LocalSlots, UpstreamSlots

log = logging.getLogger("reelgate.kling")
BALANCE_TIMEOUT = 2.0  # seconds a page waits for Kling's /account/costs before saying "not available"
BALANCE_MAX_AGE = 60.0  # seconds an answer (or a refusal) is reused, so page loads do not each call Kling
BALANCE_WINDOW = 365 * 86_400  # packs bought in the last year: Kling's query needs a window


class ElementKind:
    """kling-custom-element on Kling's advanced-custom-elements API: the media pre-flight, the body, the element."""

    carry: tuple[str, ...] = ("media",)

    def __init__(self, config: KlingConfig, pipeline: MediaPipeline, hooks: Hooks) -> None:
        self.config = config
        self.pipeline = pipeline
        self.hooks = hooks

    def parse(self, job: Job) -> CustomElementParams:
        return CustomElementParams.model_validate(job.params, context=INTERNAL)

    def path(self, run: Run) -> str:
        return ELEMENTS_PATH

    def pinned(self, run: Run) -> str | None:
        return None

    async def preflight(self, run: Run) -> State:
        stored = await self.pipeline.prepare(run.params, run.ctx, run.job)
        return {"media": [{"field": s.field, "kind": s.kind, "name": s.name, "thumbnail": s.thumbnail} for s in stored]}

    async def succeeded(self, run: Run, state: State, task: KlingTask) -> Outcome:
        if not task.element_ids:
            return Failed("generation_failed_no_content", "The provider reported success but returned no element.")
        element_id = str(task.element_ids[0])  # an exact int from the JSON, never a float: 64-bit ids survive
        stored = [
            StoredMedia(m["field"], "video" if m["kind"] == "video" else "image", m["name"], thumbnail=m["thumbnail"])
            for m in state["media"]
        ]
        result = result_data(run.params, element_id, stored, self.pipeline.url)
        return Completed(result, NewElement(element_id, upstream_id=f"{state['channel']}:{element_id}"))

    async def resume(self, run: Run, state: State) -> Outcome:
        log.error("unknown Kling element task phase", extra={"task_id": run.job.task_id, "phase": state.get("phase")})
        return Failed("service_error", "The task's saved progress could not be read.")

    async def body(self, run: Run, state: State) -> dict[str, Any]:
        """Kling's create body: our params, the media as Base64 or URL, our task id as ``external_task_id``."""
        p = run.params
        names = {m["field"]: m["name"] for m in state["media"]}
        handed = [(kind, await self._handoff(source, kind, names[field])) for field, source, kind in media_items(p)]
        images = [value for kind, value in handed if kind == "image"]
        videos = [value for kind, value in handed if kind == "video"]
        body: dict[str, Any] = {"element_name": p.element_name, "element_description": p.element_description,
                                "reference_type": p.reference_type, "external_task_id": run.job.task_id}  # fmt: skip
        if images:
            body["element_image_list"] = {"frontal_image": images[0],
                                          "refer_images": [{"image_url": i} for i in images[1:]]}  # fmt: skip
        if videos:
            body["element_video_list"] = {"refer_videos": [{"video_url": videos[0]}]}
        if p.element_voice_id:
            body["element_voice_id"] = p.element_voice_id
        if p.tag_list:
            body["tag_list"] = [t.model_dump() for t in p.tag_list]
        callback = self.hooks.callback_url(run.job.task_id)
        if callback:
            body["callback_url"] = callback
        return body

    async def _handoff(self, source: str, kind: str, name: str) -> str:
        return await hand_off(self.pipeline, self.config.media_handoff, source, kind, name)


class KlingProvider:
    """Every Kling model across one or more accounts ("channels"): elements, and videos that use them."""

    name = NAME

    def __init__(self, config: KlingConfig, pool: ChannelPool, pipeline: MediaPipeline,
                 slots: UpstreamSlots | None = None) -> None:  # fmt: skip
        self.config = config
        self.pool = pool
        self.pipeline = pipeline
        self.hooks = Hooks(config, NAME)
        self.flow = TaskFlow(config, pool, slots if slots is not None else LocalSlots())
        self.elements = ElementKind(config, pipeline, self.hooks)
        self.videos = VideoKind(config, pipeline, self.hooks)
        self._balances: dict[str, tuple[float, ChannelBalance]] = {}  # channel name: (monotonic time read, balance)
        self._balance_locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"KlingProvider({self.pool!r}, media_handoff={self.config.media_handoff!r})"

    async def run(self, job: Job, ctx: JobContext) -> Outcome:
        if self.videos.serves(job.model):
            return await self.flow.run(Run(job, ctx, self.videos, self.videos.parse(job)))
        return await self.flow.run(Run(job, ctx, self.elements, self.elements.parse(job)))

    # --- callback hint ---------------------------------------------------------------------------------------

    def hook_path(self, task_id: str) -> str:
        """The path of Kling's callback for one task, signed so only Kling (who was told it) can hint it."""
        return self.hooks.hook_path(task_id)

    def verify_hook(self, task_id: str, signature: str) -> bool:
        return self.hooks.verify_hook(task_id, signature)

    # --- channel states, for operators -----------------------------------------------------------------------

    def channel_states(self) -> list[ChannelState]:
        """Every channel: weight, cap, and whether this process has it in rotation (and until when it has not)."""
        wall = time.time()
        states = []
        for c in self.pool.all():
            left = c.down_until - c.clock()
            out = not c.healthy()
            states.append(ChannelState(NAME, c.name, c.slot_key, c.weight, c.cap, not out,
                                       wall + left if out else None, c.down_reason if out else ""))  # fmt: skip
        return states

    async def channel_balance(self, name: str) -> ChannelBalance:
        """The channel's resource packs from Kling's ``/account/costs``, read at most once a minute per channel
        (concurrent askers share one call) and waited for at most ``BALANCE_TIMEOUT`` seconds."""
        channel = self.pool.get(name)
        if channel is None:
            return ChannelBalance(f"kling:{name}", unavailable="no such channel in this process")
        async with self._balance_locks.setdefault(name, asyncio.Lock()):
            cached = self._balances.get(name)
            if cached is not None and channel.clock() - cached[0] < BALANCE_MAX_AGE:
                return cached[1]
            balance = await _read_balance(channel)
            self._balances[name] = (channel.clock(), balance)
            return balance

    # --- delete and close ------------------------------------------------------------------------------------

    async def delete_element(self, upstream_id: str, state: dict[str, Any]) -> None:
        """Delete on the channel named in ``upstream_id`` (``<channel>:<element id>``); not found counts as done.

        A bare id, or a channel no longer configured, is deleted on every channel, and only an answer of
        "deleted" or "not found" from all of them counts as success.
        """
        name, sep, raw = upstream_id.rpartition(":")
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError("a Kling upstream id ends with a decimal element id")
        named = self.pool.get(name) if sep else None
        errors: list[Exception] = []
        for channel in [named] if named is not None else self.pool.all():
            try:
                async with channel.slot(max_wait=5.0):
                    await channel.client.delete_element(int(raw))
            except (KlingError, Busy) as exc:
                log.warning("Kling delete failed", extra={"channel": channel.name, "error": str(exc)})
                errors.append(exc)
        if errors:
            raise errors[0]

    async def aclose(self) -> None:
        await self.pool.aclose()
        await self.videos.aclose()
        await self.pipeline.aclose()


async def _read_balance(channel: Channel) -> ChannelBalance:
    # Not through channel.slot(): one read a minute is no load for the account, and a channel busy with tasks is
    # exactly when an operator wants its balance.
    now = time.time()
    try:
        packs = await asyncio.wait_for(
            channel.client.resource_packs(int((now - BALANCE_WINDOW) * 1000), int(now * 1000)), BALANCE_TIMEOUT
        )
    except TimeoutError:
        return ChannelBalance(channel.slot_key, unavailable=f"Kling did not answer within {BALANCE_TIMEOUT:g} s",
                              checked=now)  # fmt: skip
    except KlingError as exc:
        # Kling's own text (e.g. 1103 "No access to the requested resource"): about the account, never a secret.
        said = f"Kling answered code {exc.code}: {exc.message}" if exc.code is not None else exc.message
        log.info("Kling resource packs not available", extra={"channel": channel.name, "error": str(exc)})
        return ChannelBalance(channel.slot_key, unavailable=said[:200], checked=now)
    shown = tuple(ResourcePack(p.name or p.id, p.kind, p.total, p.remaining, p.status,
                               p.invalid_ms / 1000 if p.invalid_ms else None) for p in packs)  # fmt: skip
    return ChannelBalance(channel.slot_key, shown, checked=now)


def build_kling_provider(
    settings: Settings,
    pipeline: MediaPipeline,
    env: Mapping[str, str] | None = None,
    slots: UpstreamSlots | None = None,
) -> KlingProvider:
    """From ``settings.kling_config`` (a 0600 JSON file), else from ``REELGATE_KLING_*`` variables in ``env``."""
    env = os.environ if env is None else env
    config = load_config_file(settings.kling_config) if settings.kling_config else config_from_env(env)
    if config is None:
        raise ConfigError(
            "the Kling provider is configured but has no account: set REELGATE_KLING_CONFIG, or "
            "REELGATE_KLING_ACCESS_KEY + REELGATE_KLING_SECRET_KEY, or REELGATE_KLING_API_KEY"
        )
    if config.media_handoff == "url" and not settings.public_base_url:
        log.warning("Kling media_handoff is 'url' but REELGATE_PUBLIC_BASE_URL is unset: uploaded media will fail")
    pool = build_pool(config, allow_http=settings.allow_private_networks)
    return KlingProvider(config, pool, pipeline, slots)
