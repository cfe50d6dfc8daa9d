"""What an operator sees across every account: the overview (throughput, times to complete, the queue, failures,
dead callbacks, channels), accounts, task search and a task's whole timeline, the element gallery, and channels.

The web console's pages read through here; each method is one page's reads, answering plain dataclasses. Times are
Unix seconds, credits thousandths. Channel states come from providers that report them (a provider's optional
``channel_states``), the places held from the upstream slots every worker shares.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reelgate.domain import STATUSES
from reelgate.errors import NotFound
from reelgate.operators import Health, KeyInfo, Operators, SecretInfo, TaskOverview, Thresholds
from reelgate.providers import ReportsChannels
from reelgate.store.accounts import AccountView
from reelgate.store.console_reads import ConsoleReads, ElementFilter, TaskFilter, TaskHistory, accounts_page
from reelgate.store.db import Row

if TYPE_CHECKING:
    from reelgate.service import TaskService

WINDOWS = {"hour": (3600, 60), "day": (86_400, 3600)}  # span, bucket width (seconds)
PAGE = 50


@dataclass(frozen=True)
class ChannelView:
    name: str
    provider: str
    in_flight: int
    waiting: int
    cap: int | None
    weight: int | None
    in_rotation: bool | None  # None: no provider of this process reports it
    out_until: float | None
    reason: str
    recent_errors: list[tuple[str, int]]


@dataclass(frozen=True)
class ModelLine:
    model: str
    submitted: int
    completed: int
    failed: int
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class Overview:
    window: str
    since: float
    bucket: int
    series: dict[str, list[int]]  # status -> tasks submitted per bucket, by their status now
    models: list[ModelLine]
    p50: float | None
    p95: float | None
    active: dict[str, int]
    health: Health  # workers and dispatchers alive, the queue (depth, oldest waiting), whether it is stalled
    failures: list[tuple[str, int]]
    dead_callbacks: int
    dead_recent: list[Row]
    channels: list[ChannelView]


@dataclass(frozen=True)
class AccountPage:
    view: AccountView
    limits: tuple[int | None, int | None]
    keys: list[KeyInfo]
    secret: SecretInfo
    tasks: list[Row]
    elements: list[Row]


@dataclass(frozen=True)
class TaskPage:
    task: TaskOverview
    history: TaskHistory
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (time, what, detail), oldest first


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0-1) by nearest rank, or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


class Oversight:
    def __init__(self, service: TaskService) -> None:
        self.service = service
        self.operators = Operators(service.store)
        self.reads = ConsoleReads(service.store.db)

    # --- overview -----------------------------------------------------------------------------------------------

    async def overview(self, window: str = "hour", now: float | None = None) -> Overview:
        now = time.time() if now is None else now
        span, width = WINDOWS.get(window, WINDOWS["hour"])
        since = now - span
        buckets = span // width
        rows = await self.reads.submitted_by_bucket(since, now, width)
        series = {status: [0] * buckets for status in STATUSES}
        per_model: dict[str, Counter[str]] = {}
        for r in rows:
            index, status, n = int(r["b"]), str(r["status"]), int(r["n"])
            if 0 <= index < buckets and status in series:
                series[status][index] += n
            counts = per_model.setdefault(str(r["model"]), Counter())
            counts["submitted"] += n
            counts[status] += n
        times = await self.reads.completion_times(since)
        by_model: dict[str, list[float]] = {}
        for t in times:
            by_model.setdefault(str(t["model"]), []).append(float(t["d"]))
        every = [float(t["d"]) for t in times]
        models = [
            ModelLine(m, c["submitted"], c["completed"], c["failed"], percentile(by_model.get(m, []), 0.5),
                      percentile(by_model.get(m, []), 0.95))
            for m, c in sorted(per_model.items())
        ]  # fmt: skip
        health = await self.operators.health(Thresholds.from_settings(self.service.settings))
        dead, recent = await self.reads.dead_callbacks()
        failures = [(str(r["error_code"] or "(none)"), int(r["n"])) for r in await self.reads.failures_by_code(since)]
        return Overview(window if window in WINDOWS else "hour", since, width, series, models, percentile(every, 0.5),
                        percentile(every, 0.95), await self.reads.active_counts(), health, failures, dead,
                        recent, await self.channels(now))  # fmt: skip

    # --- channels -----------------------------------------------------------------------------------------------

    async def channels(self, now: float | None = None) -> list[ChannelView]:
        """Every channel a provider of this process reports, and any other that holds upstream slots."""
        now = time.time() if now is None else now
        slots = await self.reads.slots_by_channel()
        errors: dict[str, Counter[str]] = {}
        for r in await self.reads.failed_with_state(now - 86_400):
            state = json.loads(r["state"] or "{}")
            if isinstance(state, dict) and isinstance(state.get("channel"), str):
                key = f"{r['provider']}:{state['channel']}"
                errors.setdefault(key, Counter())[str(r["error_code"] or "(none)")] += 1
        reported = [s for p in self.service.providers.values() if isinstance(p, ReportsChannels)
                    for s in p.channel_states()]  # fmt: skip
        views = [
            ChannelView(s.slot_key, s.provider, *slots.get(s.slot_key, (0, 0)), s.cap, s.weight, s.in_rotation,
                        s.out_until, s.reason, errors.get(s.slot_key, Counter()).most_common(5))
            for s in reported
        ]  # fmt: skip
        known = {s.slot_key for s in reported}
        for key in sorted((set(slots) | set(errors)) - known):
            views.append(ChannelView(key, key.split(":", 1)[0], *slots.get(key, (0, 0)), None, None, None, None, "",
                                     errors.get(key, Counter()).most_common(5)))  # fmt: skip
        return views

    # --- accounts -----------------------------------------------------------------------------------------------

    async def accounts(self, contains: str = "", after: str = "") -> list[Row]:
        return await accounts_page(self.service.store.db, contains.strip(), after, PAGE)

    async def account(self, name: str) -> AccountPage:
        account_id = await self.operators.account_id(name)
        view = await self.service.store.accounts.view(account_id, 30)
        return AccountPage(
            view=view,
            limits=await self.reads.account_limits(account_id),
            keys=await self.operators.list_keys(name),
            secret=await self.operators.webhook_secret_info(name),
            tasks=await self.reads.search_tasks(TaskFilter(account_id=account_id), 20),
            elements=await self.reads.elements(ElementFilter(account_id=account_id), 12),
        )

    async def account_id(self, name: str) -> int:
        return await self.operators.account_id(name)

    # --- tasks --------------------------------------------------------------------------------------------------

    async def search_tasks(self, f: TaskFilter) -> list[Row]:
        return await self.reads.search_tasks(f, PAGE)

    async def task(self, task_id: str) -> TaskPage:
        task = await self.operators.find_task(task_id)
        history = await self.reads.task_history(task.id)
        if history is None:  # deleted between the two reads: tasks are never deleted, but say so plainly
            raise NotFound(f"no task {task_id!r} in any account", code="task_not_found", param="task_id")
        return TaskPage(task, history, timeline(task, history))

    # --- elements -----------------------------------------------------------------------------------------------

    async def elements(self, f: ElementFilter, limit: int = 24) -> list[Row]:
        return await self.reads.elements(f, limit)

    async def element(self, element_id: str) -> Row:
        found = await self.reads.element(element_id) if element_id.isascii() and element_id.isdigit() else None
        if found is None:
            raise NotFound(f"no element {element_id[:40]!r} in any account", code="element_not_found")
        return found


def timeline(task: TaskOverview, h: TaskHistory) -> list[tuple[float, str, str]]:
    """The task's recorded events, oldest first: submit, lease takeovers, ledger entries, the end, callbacks."""
    events: list[tuple[float, str, str]] = [(task.created_at, "submitted", f"{task.model} via {task.provider}")]
    for c in h.claims:
        lost = f"lease of {c['previous_owner']} had expired" if c["previous_owner"] else ""
        events.append((float(c["claimed_at"]), "lease taken over", f"by {c['owner']}; {lost}".strip("; ")))
    for e in h.ledger:
        events.append((float(e["created"]), f"credits {e['kind']}", f"{int(e['amount']) / 1000:g} {e['note']}".strip()))
    if task.finished_at is not None:
        detail = f"{task.error_code}: {task.error_message}" if task.error_code else "result stored"
        events.append((task.finished_at, task.status, detail))
    if h.delivery is not None:
        events.append((float(h.delivery["created"]), "callback queued", str(h.delivery["url"])))
    for a in h.attempts:
        # The error names the status when there was one ("HTTP 500"), and what went wrong when there was none.
        answer = a["error"] or (f"HTTP {a['status_code']}" if a["status_code"] is not None else "no answer")
        events.append((float(a["started_at"]), f"callback attempt {a['attempt']}",
                       f"{answer} in {float(a['latency_ms']):.0f} ms"))  # fmt: skip
    # Ledger rows of one transaction share a time with the finish: the sort is stable, so they keep this order.
    return sorted(events, key=lambda e: e[0])
