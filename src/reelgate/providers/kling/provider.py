"""The Kling upstream provider: pre-flight media, create exactly once per task, poll with back-off, map the outcome.

State machine, saved in the task row (so a poll holds no coroutine and a restart loses nothing):
``ready`` (media checked, channel chosen, nothing sent) → ``creating`` (saved right before the create call:
from here on every run first looks the task up by ``external_task_id``, and trusts a "not found" only once
``create_settle`` seconds have passed since a create that got no answer) → ``polling`` (Kling task id known).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reelgate.catalog.custom_element import CustomElementParams, MediaPipeline, StoredMedia, media_items, result_data
from reelgate.config import ConfigError, Settings
from reelgate.errors import MediaError
from reelgate.params import INTERNAL, is_url
from reelgate.providers import Completed, Failed, Job, JobContext, NewElement, Outcome, Pending, hook_path
from reelgate.providers.kling import NAME
from reelgate.providers.kling.api import KlingError, KlingTask
from reelgate.providers.kling.channels import (
    Busy,
    Channel,
    ChannelPool,
    KlingConfig,
    build_pool,
    config_from_env,
    load_config_file,
)
from reelgate.providers.kling.codes import map_failure

POLL_SLOT_WAIT = 2.0
log = logging.getLogger("reelgate.kling")
NO_CHANNEL = "No upstream provider account is available right now; try again later."
LOST_CHANNEL = "The upstream provider account that holds this task is no longer available."
HANDOFF = "The uploaded media could not be handed to the provider; send it by http(s) URL instead."
MISSING_POLLS = 3
State = dict[str, Any]


class HandoffError(Exception):
    """The create body cannot be built (a stored copy is gone, or an upload has no URL Kling could fetch)."""


@dataclass(frozen=True)
class _Run:
    job: Job
    params: CustomElementParams
    ctx: JobContext


def _unusable(exc: KlingError) -> bool:
    """Errors that say this account cannot be used now (auth, account, arrears, no access, IP allow-list)."""
    return exc.is_auth or exc.is_account or exc.code == 1304


def _give_up(state: State) -> Failed:
    code = state.get("last_code")
    if code is None:
        return Failed("service_unavailable", "The upstream provider could not be reached; try again later.")
    return Failed(*map_failure("", int(code)))


class KlingProvider:
    """Creates elements on Kling's official API across one or more accounts ("channels")."""

    name = NAME

    def __init__(self, config: KlingConfig, pool: ChannelPool, pipeline: MediaPipeline) -> None:
        self.config = config
        self.pool = pool
        self.pipeline = pipeline

    def __repr__(self) -> str:
        return f"KlingProvider({self.pool!r}, media_handoff={self.config.media_handoff!r})"

    async def run(self, job: Job, ctx: JobContext) -> Outcome:
        run = _Run(job, CustomElementParams.model_validate(job.params, context=INTERNAL), ctx)
        state: State = dict(job.state)
        if state.get("phase") == "polling":
            return await self._poll(run, state)
        if state.get("phase") is None:
            start = await self._preflight(run)
            if isinstance(start, Failed):
                return start
            state = start
        return await self._create(run, state)

    # --- pre-flight and create -------------------------------------------------------------------------------

    async def _preflight(self, run: _Run) -> State | Failed:
        """Check and store the media first: a request Kling would refuse costs no upstream call."""
        await run.ctx.progress(5)
        try:
            stored = await self.pipeline.prepare(run.params, run.ctx, run.job)
        except MediaError as exc:
            return Failed(exc.code, exc.message)
        channel = self.pool.pick()
        if channel is None:
            return Failed("service_error", NO_CHANNEL)
        media = [{"field": s.field, "kind": s.kind, "name": s.name, "thumbnail": s.thumbnail} for s in stored]
        return {"phase": "ready", "channel": channel.name, "media": media, "tries": 0}

    async def _create(self, run: _Run, state: State) -> Outcome:
        channel = self.pool.get(state["channel"])
        if state["phase"] == "creating":
            if channel is None:
                return self._lost(run, state)
            looked = await self._lookup(run, state, channel)
            if looked is not None:
                return looked
            unsettled = float(state.get("sent_at", 0)) + self.config.create_settle - time.time()
            if unsettled > 0:  # an unanswered create may still be in progress at Kling: "not found" proves nothing yet
                return Pending(unsettled, state)
            if state.get("tries", 0) >= self.config.max_retries:
                return _give_up(state)
        if channel is None or not channel.healthy():
            return self._move(run, state)  # safe: nothing was sent, or the lookup just said "not found"
        try:
            body = await self._body(run, state)
        except HandoffError as exc:
            log.error("cannot build the Kling create body", extra={"task_id": run.job.task_id, "error": str(exc)})
            return Failed("service_error", HANDOFF)
        creating = {**state, "phase": "creating", "sent_at": time.time()}
        try:
            async with channel.slot():
                await run.ctx.save_state(creating, cancellable=False)  # write-before-call
                task = await channel.client.create(body)
        except Busy as busy:
            return Pending(busy.wait, state)
        except KlingError as exc:
            return self._create_failed(run, creating, channel, exc)
        log.info("Kling task created", extra={"task_id": run.job.task_id, "channel": channel.name,
                                              "kling_task_id": task.task_id})  # fmt: skip
        return await self._adopt(run, creating, channel, task)

    async def _lookup(self, run: _Run, state: State, channel: Channel) -> Outcome | None:
        """Find a create that may have reached Kling; None only when Kling confirms it does not exist."""
        try:
            async with channel.slot():
                found = await channel.client.get(run.job.task_id)
        except Busy as busy:
            return Pending(busy.wait, state)
        except KlingError as exc:
            if _unusable(exc):
                self.pool.mark_down(channel, exc.code)
            log.warning("Kling lookup failed; asking again later", extra=self._extra(run, channel, exc))
            return self._retry(state)
        if found is None:
            return None
        if found.external_task_id not in (None, run.job.task_id):
            log.error("Kling answered the lookup with another task", extra={"task_id": run.job.task_id})
            return self._retry(state)
        log.info("adopted the Kling task found by external_task_id", extra={"task_id": run.job.task_id,
                                                                             "channel": channel.name})  # fmt: skip
        return await self._adopt(run, state, channel, found)

    def _create_failed(self, run: _Run, state: State, channel: Channel, exc: KlingError) -> Outcome:
        log.warning("Kling create failed", extra=self._extra(run, channel, exc))
        state = {**state, "last_code": exc.code}
        if not exc.is_ambiguous:
            state.pop("sent_at", None)  # Kling answered (or never got it): that request is over
        if exc.is_ambiguous or exc.is_retryable:
            return self._retry(state)  # the next run looks the task up before creating again
        if _unusable(exc):
            self.pool.mark_down(channel, exc.code)
            return self._move(run, state)  # Kling answered with a refusal: nothing exists upstream
        if exc.is_bad_params and "external_task_id" in exc.message.lower():
            return self._retry(state)  # Kling already has our id: the lookup adopts it
        return Failed(*map_failure(exc.message, exc.code))

    def _retry(self, state: State) -> Pending:
        tries = int(state.get("tries", 0)) + 1
        delay = min(self.config.retry_max, self.config.retry_initial * 2 ** (tries - 1))
        return Pending(_jitter(delay), {**state, "tries": tries})

    def _move(self, run: _Run, state: State) -> Outcome:
        refused = [*state.get("refused", []), state["channel"]]
        nxt = self.pool.pick(exclude=frozenset(refused))
        if nxt is None:
            return Failed("service_error", NO_CHANNEL)
        log.info("task moved to another Kling channel", extra={"task_id": run.job.task_id, "channel": nxt.name})
        return Pending(0.0, {"phase": "ready", "channel": nxt.name, "media": state["media"], "tries": 0,
                             "refused": refused})  # fmt: skip

    def _lost(self, run: _Run, state: State) -> Failed:
        log.error("the Kling channel of this task is not configured any more",
                  extra={"task_id": run.job.task_id, "channel": state.get("channel")})  # fmt: skip
        return Failed("service_error", LOST_CHANNEL)

    # --- polling ---------------------------------------------------------------------------------------------

    async def _adopt(self, run: _Run, state: State, channel: Channel, task: KlingTask) -> Outcome:
        polling = {"phase": "polling", "channel": channel.name, "kling_task_id": task.task_id,
                   "media": state["media"], "polls": 0, "next_delay": self.config.poll_initial}  # fmt: skip
        await run.ctx.save_state(polling)
        await run.ctx.progress(85)
        return await self._judge(run, polling, task)

    async def _poll(self, run: _Run, state: State) -> Outcome:
        channel = self.pool.get(state["channel"])
        if channel is None:
            return self._lost(run, state)
        try:
            # A poll holds its slot for milliseconds: waiting briefly keeps the task's place, where bouncing it
            # would send it behind every other due task.
            async with channel.slot(max_wait=POLL_SLOT_WAIT):
                task = await channel.client.get(state["kling_task_id"])
        except Busy as busy:
            return Pending(busy.wait, state)
        except KlingError as exc:
            if _unusable(exc):
                self.pool.mark_down(channel, exc.code)
            log.warning("Kling poll failed; polling again later", extra=self._extra(run, channel, exc))
            return self._next_poll(state)
        if task is None:
            missing = int(state.get("missing", 0)) + 1
            if missing >= MISSING_POLLS:
                return Failed("resource_not_found", "The upstream task no longer exists.")
            return self._next_poll({**state, "missing": missing})
        return await self._judge(run, {**state, "missing": 0}, task)

    async def _judge(self, run: _Run, state: State, task: KlingTask) -> Outcome:
        status = task.state
        if status == "completed":
            return self._completed(run, state, task)
        if status == "failed":
            code, message = map_failure(task.status_msg, None)
            log.info("Kling task failed", extra={"task_id": run.job.task_id, "code": code})
            return Failed(code, message)
        if status == "processing" and state.get("kling_status") != task.status:
            await run.ctx.progress(90)  # once per change: 10,000 polling tasks should not each write every poll
        elif status == "unknown":
            extra = {"task_id": run.job.task_id, "kling_status": task.status[:40]}
            log.warning("unknown Kling task status; still polling", extra=extra)
        return self._next_poll({**state, "kling_status": task.status[:40]})

    def _next_poll(self, state: State) -> Pending:
        polls = int(state.get("polls", 0))
        # The exponent is capped so a long-lived task cannot overflow a float (factor**1024 does).
        delay = min(self.config.poll_max, self.config.poll_initial * self.config.poll_factor ** min(polls, 60))
        following = min(self.config.poll_max, delay * self.config.poll_factor)
        return Pending(_jitter(delay), {**state, "polls": polls + 1, "next_delay": following})

    def _completed(self, run: _Run, state: State, task: KlingTask) -> Outcome:
        if not task.element_ids:
            return Failed("generation_failed_no_content", "The provider reported success but returned no element.")
        element_id = str(task.element_ids[0])  # an exact int from the JSON, never a float: 64-bit ids survive
        stored = [
            StoredMedia(m["field"], "video" if m["kind"] == "video" else "image", m["name"], thumbnail=m["thumbnail"])
            for m in state["media"]
        ]
        result = result_data(run.params, element_id, stored, self.pipeline.url)
        return Completed(result, NewElement(element_id, upstream_id=f"{state['channel']}:{element_id}"))

    # --- the create body -------------------------------------------------------------------------------------

    async def _body(self, run: _Run, state: State) -> dict[str, Any]:
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
        if self.config.callback_base_url:
            body["callback_url"] = f"{self.config.callback_base_url.rstrip('/')}{self.hook_path(run.job.task_id)}"
        return body

    async def _handoff(self, source: str, kind: str, name: str) -> str:
        if kind == "image" and self.config.media_handoff == "base64":
            data = await self.pipeline.assets.read(name)
            if data is None:
                raise HandoffError(f"the stored copy {name} is missing")
            # Encoding 10 MB takes ~10 ms: off the event loop, which keeps answering polls.
            return (await asyncio.to_thread(base64.b64encode, data)).decode("ascii")
        if self.pipeline.settings.public_base_url:
            return self.pipeline.url(name)  # the very bytes we checked
        if is_url(source):
            return source
        raise HandoffError("an uploaded file needs REELGATE_PUBLIC_BASE_URL to be handed to Kling by URL")

    # --- callback hint ---------------------------------------------------------------------------------------

    def _signature(self, task_id: str) -> str:
        secret = self.config.callback_secret
        key = secret.get_secret_value().encode() if secret is not None else b""
        return hmac.new(key, task_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]

    def hook_path(self, task_id: str) -> str:
        """The path of Kling's callback for one task, signed so only Kling (who was told it) can hint it."""
        return hook_path(self.name, task_id, self._signature(task_id))

    def verify_hook(self, task_id: str, signature: str) -> bool:
        if self.config.callback_secret is None:
            return False
        # Bytes, not str: compare_digest raises TypeError on a str with any non-ASCII character, and the signature
        # is whatever a stranger put in the URL.
        given = signature.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(self._signature(task_id).encode("ascii"), given)

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
        await self.pipeline.aclose()

    def _extra(self, run: _Run, channel: Channel, exc: KlingError) -> dict[str, Any]:
        return {
            "task_id": run.job.task_id,
            "channel": channel.name,
            "kling_code": exc.code,
            "http_status": exc.http_status,
            "kling_request_id": exc.request_id,
            "error": exc.message[:200],
        }


def _jitter(delay: float) -> float:
    """Up to 10 % more, so thousands of tasks polled on one schedule drift apart."""
    return delay * (1 + random.random() / 10)


def build_kling_provider(
    settings: Settings, pipeline: MediaPipeline, env: Mapping[str, str] | None = None
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
    return KlingProvider(config, build_pool(config, allow_http=settings.allow_private_networks), pipeline)
