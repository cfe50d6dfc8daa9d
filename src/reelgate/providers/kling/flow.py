"""The life of one Kling task, shared by element and video tasks: pre-flight, create exactly once, poll, map.

State machine, saved in the task row (so a poll holds no coroutine and a restart loses nothing):
``ready`` (media checked, channel chosen, nothing sent) → ``creating`` (saved right before the create call:
from here on every run first looks the task up by ``external_task_id``, and trusts a "not found" only once
``create_settle`` seconds have passed since a create that got no answer) → ``polling`` (Kling task id known) →
a phase of the task's kind after Kling's success, if it has one (a video's ``downloading``).

Right before a create the task takes one of its channel's upstream slots (providers/upstream.py: the channel's
``concurrency``, held across every process); it gives it back when Kling says the task is final, when Kling
refused the create, or when the task ends. What differs between an element and a video is a ``Kind``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

from reelgate.catalog.custom_element import MediaPipeline
from reelgate.errors import MediaError
from reelgate.params import is_url
from reelgate.providers import Failed, Job, JobContext, Outcome, Pending, hook_path
from reelgate.providers.kling.api import KlingError, KlingTask
from reelgate.providers.kling.channels import Busy, Channel, ChannelPool, KlingConfig
from reelgate.providers.kling.codes import map_failure
from reelgate.providers.upstream import UpstreamSlots

POLL_SLOT_WAIT = 2.0
log = logging.getLogger("reelgate.kling")
NO_CHANNEL = "No upstream provider account is available right now; try again later."
LOST_CHANNEL = "The upstream provider account that holds this task is no longer available."
HANDOFF = "The uploaded media could not be handed to the provider; send it by http(s) URL instead."
MISSING_POLLS = 3
CONCURRENCY_LIMIT = 1303  # Kling's "too many tasks in flight on this account": wait, never fail
SLOT_WAIT_MAX = 5.0  # the longest a task in line for a place sleeps between two asks
State = dict[str, Any]


class HandoffError(Exception):
    """The create body cannot be built (a stored copy is gone, or an upload has no URL Kling could fetch)."""


async def hand_off(pipeline: MediaPipeline, media_handoff: str, source: str, kind: str, name: str) -> str:
    """How Kling gets one checked media item: its stored copy as Base64 (images, when so configured), the stored
    copy's URL (the very bytes we checked) when Reelgate has a public base URL, else the caller's own URL."""
    if kind == "image" and media_handoff == "base64":
        data = await pipeline.assets.read(name)
        if data is None:
            raise HandoffError(f"the stored copy {name} is missing")
        # Encoding 10 MB takes ~10 ms: off the event loop, which keeps answering polls.
        return (await asyncio.to_thread(base64.b64encode, data)).decode("ascii")
    if pipeline.settings.public_base_url:
        return pipeline.url(name)
    if is_url(source):
        return source
    raise HandoffError("an uploaded file needs REELGATE_PUBLIC_BASE_URL to be handed to Kling by URL")


@dataclass(frozen=True)
class Run:
    """One step of one task: the job, where to report, what kind of task it is, and its params as that kind reads
    them."""

    job: Job
    ctx: JobContext
    kind: Kind
    params: Any


class Kind(Protocol):
    """What differs between an element task and a video task."""

    carry: tuple[str, ...]  # state keys the pre-flight makes, kept through every later phase

    def path(self, run: Run) -> str:
        """Kling's endpoint for this task: POST to create, GET ``<path>/<id>`` to look up and poll."""

    def pinned(self, run: Run) -> str | None:
        """The channel the task must run on (its elements live there), or None: any healthy channel."""

    async def preflight(self, run: Run) -> State:
        """Check (and store) the task's media before anything is sent; raise MediaError to refuse it."""

    async def body(self, run: Run, state: State) -> dict[str, Any]:
        """Kling's create body, ``external_task_id`` included; raise HandoffError when media cannot be handed."""

    async def succeeded(self, run: Run, state: State, task: KlingTask) -> Outcome:
        """Kling reports success: the outcome, or a Pending into a phase of the kind's own."""

    async def resume(self, run: Run, state: State) -> Outcome:
        """Run a phase of the kind's own (one not in ready/creating/polling)."""


class Hooks:
    """Kling's own callback, a hint to poll sooner: the signed path of each task and its check."""

    def __init__(self, config: KlingConfig, name: str) -> None:
        self.config = config
        self.name = name

    def _signature(self, task_id: str) -> str:
        secret = self.config.callback_secret
        key = secret.get_secret_value().encode() if secret is not None else b""
        return hmac.new(key, task_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]

    def hook_path(self, task_id: str) -> str:
        """The path of Kling's callback for one task, signed so only Kling (who was told it) can hint it."""
        return hook_path(self.name, task_id, self._signature(task_id))

    def callback_url(self, task_id: str) -> str | None:
        if not self.config.callback_base_url:
            return None
        return f"{self.config.callback_base_url.rstrip('/')}{self.hook_path(task_id)}"

    def verify_hook(self, task_id: str, signature: str) -> bool:
        if self.config.callback_secret is None:
            return False
        # Bytes, not str: compare_digest raises TypeError on a str with any non-ASCII character, and the signature
        # is whatever a stranger put in the URL.
        given = signature.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(self._signature(task_id).encode("ascii"), given)


def _unusable(exc: KlingError) -> bool:
    """Errors that say this account cannot be used now (auth, account, arrears, no access, IP allow-list)."""
    return exc.is_auth or exc.is_account or exc.code == 1304


def _give_up(state: State) -> Failed:
    code = state.get("last_code")
    if code is None:
        return Failed("service_unavailable", "The upstream provider could not be reached; try again later.")
    return Failed(*map_failure("", int(code)))


def jitter(delay: float) -> float:
    """Up to 10 % more, so thousands of tasks polled on one schedule drift apart."""
    return delay * (1 + random.random() / 10)


class TaskFlow:
    """Runs one step of a Kling task of any kind across one or more accounts ("channels")."""

    def __init__(self, config: KlingConfig, pool: ChannelPool, slots: UpstreamSlots) -> None:
        self.config = config
        self.pool = pool
        self.slots = slots

    async def run(self, run: Run) -> Outcome:
        outcome = await self._step(run)
        if not isinstance(outcome, Pending):
            await self.slots.release(run.job.task_id)  # the task ends: whatever it held upstream is over for us
        return outcome

    async def _step(self, run: Run) -> Outcome:
        state: State = dict(run.job.state)
        phase = state.get("phase")
        if phase == "polling":
            return await self._poll(run, state)
        if phase not in (None, "ready", "creating"):
            return await run.kind.resume(run, state)
        if phase is None:
            start = await self._preflight(run)
            if isinstance(start, Failed):
                return start
            state = start
        return await self._create(run, state)

    # --- pre-flight and create -------------------------------------------------------------------------------

    async def _preflight(self, run: Run) -> State | Failed:
        """Check and store the media first: a request Kling would refuse costs no upstream call."""
        await run.ctx.progress(5)
        try:
            extra = await run.kind.preflight(run)
        except MediaError as exc:
            return Failed(exc.code, exc.message)
        pinned = run.kind.pinned(run)
        if pinned is not None:
            if self.pool.get(pinned) is None:
                return self._lost(run, {"channel": pinned})
            return {"phase": "ready", "channel": pinned, **extra, "tries": 0, "pinned": True}
        channel = self.pool.pick()
        if channel is None:
            return Failed("service_error", NO_CHANNEL)
        return {"phase": "ready", "channel": channel.name, **extra, "tries": 0}

    async def _create(self, run: Run, state: State) -> Outcome:
        channel = self.pool.get(state["channel"])
        if state["phase"] == "creating":
            if channel is None:
                return self._lost(run, state)
            before = await self._before_repeat(run, state, channel)
            if before is not None:
                return before
        if channel is None or not channel.healthy():
            await self.slots.release(run.job.task_id)  # leave the channel's line: the task goes elsewhere, or later
            return self._move(run, state)  # safe: nothing was sent, or the lookup just said "not found"
        try:
            body = await run.kind.body(run, state)
        except HandoffError as exc:
            log.error("cannot build the Kling create body", extra={"task_id": run.job.task_id, "error": str(exc)})
            return Failed("service_error", HANDOFF)
        if not await self.slots.acquire(channel.slot_key, run.job.task_id, channel.cap):
            # The account has its cap of tasks in flight, or others waited longer: nothing sent; the task keeps its
            # place in line and asks again soon (a place left free waits for the task first in line).
            return self._wait(state, SLOT_WAIT_MAX)
        creating = {**state, "phase": "creating", "sent_at": time.time()}
        try:
            async with channel.slot():
                await run.ctx.save_state(creating, cancellable=False)  # write-before-call
                task = await channel.client.create(body, run.kind.path(run))
        except Busy as busy:
            return Pending(busy.wait, state)
        except KlingError as exc:
            return await self._create_failed(run, creating, channel, exc)
        log.info("Kling task created", extra={"task_id": run.job.task_id, "channel": channel.name,
                                              "kling_task_id": task.task_id})  # fmt: skip
        return await self._adopt(run, creating, channel, task)

    async def _before_repeat(self, run: Run, state: State, channel: Channel) -> Outcome | None:
        """A create may have been sent before: adopt what Kling has, or wait; None when creating again is safe."""
        looked = await self._lookup(run, state, channel)
        if looked is not None:
            return looked
        unsettled = float(state.get("sent_at", 0)) + self.config.create_settle - time.time()
        if unsettled > 0:  # an unanswered create may still be in progress at Kling: "not found" proves nothing yet
            return Pending(unsettled, state)
        if state.get("tries", 0) >= self.config.max_retries:
            return _give_up(state)
        return None

    async def _lookup(self, run: Run, state: State, channel: Channel) -> Outcome | None:
        """Find a create that may have reached Kling; None only when Kling confirms it does not exist."""
        try:
            async with channel.slot():
                found = await channel.client.get(run.job.task_id, run.kind.path(run))
        except Busy as busy:
            return Pending(busy.wait, state)
        except KlingError as exc:
            if _unusable(exc):
                self.pool.mark_down(channel, exc.code)
            log.warning("Kling lookup failed; asking again later", extra=_extra(run, channel, exc))
            return self._retry(state)
        if found is None:
            return None
        if found.external_task_id not in (None, run.job.task_id):
            log.error("Kling answered the lookup with another task", extra={"task_id": run.job.task_id})
            return self._retry(state)
        log.info("adopted the Kling task found by external_task_id", extra={"task_id": run.job.task_id,
                                                                             "channel": channel.name})  # fmt: skip
        return await self._adopt(run, state, channel, found)

    async def _create_failed(self, run: Run, state: State, channel: Channel, exc: KlingError) -> Outcome:
        log.warning("Kling create failed", extra=_extra(run, channel, exc))
        state = {**state, "last_code": exc.code}
        if not exc.is_ambiguous:
            state.pop("sent_at", None)  # Kling answered (or never got it): that request is over
            await self.slots.release(run.job.task_id)  # and nothing of ours is in flight there
        if exc.code == CONCURRENCY_LIMIT:
            return self._wait(state, self.config.retry_max)  # Kling's own cap (others use the account): never fail
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
        return Pending(jitter(delay), {**state, "tries": tries})

    def _wait(self, state: State, most: float) -> Pending:
        """Back off for a full account (our cap or Kling's 1303) without counting a try: it fails nothing."""
        waits = int(state.get("waits", 0)) + 1
        delay = min(most, self.config.retry_max, self.config.busy_delay * 2 ** min(waits - 1, 20))
        return Pending(jitter(delay), {**state, "waits": waits})

    def _move(self, run: Run, state: State) -> Outcome:
        if state.get("pinned"):
            # The task's elements live in this account: it cannot move; wait for the account, within reason.
            if self.pool.get(state["channel"]) is None:
                return self._lost(run, state)
            if int(state.get("tries", 0)) >= self.config.max_retries:
                return Failed("service_error", NO_CHANNEL)
            return self._retry(state)
        refused = [*state.get("refused", []), state["channel"]]
        nxt = self.pool.pick(exclude=frozenset(refused))
        if nxt is None:
            return Failed("service_error", NO_CHANNEL)
        log.info("task moved to another Kling channel", extra={"task_id": run.job.task_id, "channel": nxt.name})
        carried = {key: state[key] for key in run.kind.carry if key in state}
        return Pending(0.0, {"phase": "ready", "channel": nxt.name, **carried, "tries": 0, "refused": refused})

    def _lost(self, run: Run, state: State) -> Failed:
        log.error("the Kling channel of this task is not configured any more",
                  extra={"task_id": run.job.task_id, "channel": state.get("channel")})  # fmt: skip
        return Failed("service_error", LOST_CHANNEL)

    # --- polling ---------------------------------------------------------------------------------------------

    async def _adopt(self, run: Run, state: State, channel: Channel, task: KlingTask) -> Outcome:
        carried = {key: state[key] for key in run.kind.carry if key in state}
        polling = {"phase": "polling", "channel": channel.name, "kling_task_id": task.task_id, **carried,
                   "polls": 0, "next_delay": self.config.poll_initial}  # fmt: skip
        await run.ctx.save_state(polling)
        await run.ctx.progress(85)
        return await self._judge(run, polling, task)

    async def _poll(self, run: Run, state: State) -> Outcome:
        channel = self.pool.get(state["channel"])
        if channel is None:
            return self._lost(run, state)
        try:
            # A poll holds its slot for milliseconds: waiting briefly keeps the task's place, where bouncing it
            # would send it behind every other due task.
            async with channel.slot(max_wait=POLL_SLOT_WAIT):
                task = await channel.client.get(state["kling_task_id"], run.kind.path(run))
        except Busy as busy:
            return Pending(busy.wait, state)
        except KlingError as exc:
            if _unusable(exc):
                self.pool.mark_down(channel, exc.code)
            log.warning("Kling poll failed; polling again later", extra=_extra(run, channel, exc))
            return self._next_poll(state)
        if task is None:
            missing = int(state.get("missing", 0)) + 1
            if missing >= MISSING_POLLS:
                return Failed("resource_not_found", "The upstream task no longer exists.")
            return self._next_poll({**state, "missing": missing})
        return await self._judge(run, {**state, "missing": 0}, task)

    async def _judge(self, run: Run, state: State, task: KlingTask) -> Outcome:
        status = task.state
        if status == "completed":
            await self.slots.release(run.job.task_id)  # no longer in flight at Kling, whatever comes next here
            return await run.kind.succeeded(run, state, task)
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
        return Pending(jitter(delay), {**state, "polls": polls + 1, "next_delay": following})


def _extra(run: Run, channel: Channel, exc: KlingError) -> dict[str, Any]:
    return {
        "task_id": run.job.task_id,
        "channel": channel.name,
        "kling_code": exc.code,
        "http_status": exc.http_status,
        "kling_request_id": exc.request_id,
        "error": exc.message[:200],
    }
