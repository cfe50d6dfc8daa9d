"""Is the work getting done? Which workers and dispatchers are alive, the queue, and whether the backlog is stalled.

``/readyz`` answers for one API process; this answers for the deployment, from the database every process shares:
the heartbeat rows of workers and dispatchers (``reelgate.liveness``) and the tasks waiting to be claimed. The
backlog is stalled when no worker has heartbeated within ``liveness_seconds`` (nothing will run the tasks) or the
oldest waiting task has waited longer than ``stall_seconds`` (the workers do not keep up). ``reelgate status``,
the console and the ``reelgate_backlog_stalled`` gauge all read it through ``read_health``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reelgate.config import Settings
from reelgate.store.processes import ProcessBeat

if TYPE_CHECKING:  # the store's engines stay unloaded until a caller opens one (operators.py says why)
    from reelgate.store.sql import Store


@dataclass(frozen=True)
class Thresholds:
    """When a process counts as alive, and how long a task may wait before the backlog counts as stalled."""

    liveness_seconds: float = 30.0
    stall_seconds: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(liveness_seconds=settings.liveness_seconds, stall_seconds=settings.stall_seconds)


@dataclass(frozen=True)
class ProcessHealth:
    """One worker or dispatcher on record: its heartbeat row and whether it counts as alive."""

    id: str  # its lease-owner name, as tasks.lease_owner and task_claims.owner show it
    kind: str  # worker | dispatcher
    host: str
    pid: int
    started: float  # Unix seconds
    last_seen: float  # Unix seconds of its last heartbeat
    concurrency: int
    in_hand: int  # tasks (or callback attempts) it held at its last heartbeat
    alive: bool
    silent_seconds: float  # since its last heartbeat

    @classmethod
    def of(cls, beat: ProcessBeat, now: float, liveness_seconds: float) -> ProcessHealth:
        silent = max(0.0, now - beat.last_seen)
        return cls(id=beat.id, kind=beat.kind, host=beat.host, pid=beat.pid, started=beat.started,
                   last_seen=beat.last_seen, concurrency=beat.concurrency, in_hand=beat.in_hand,
                   alive=silent <= liveness_seconds, silent_seconds=silent)  # fmt: skip


@dataclass(frozen=True)
class Health:
    """The deployment's state as of ``checked_at``: processes on record (alive first, then those that went silent
    within the last hour), the queue, and whether the backlog is stalled, with the reasons in words."""

    checked_at: float
    thresholds: Thresholds
    processes: tuple[ProcessHealth, ...]
    queue_depth: int  # tasks due and not leased
    oldest_waiting_seconds: float  # how long the oldest of them has waited (0 when none)
    stalled: bool
    reasons: tuple[str, ...]  # why it is stalled (empty when it is not)
    warnings: tuple[str, ...]  # what is wrong without stalling tasks (no dispatcher: callbacks wait)

    def alive(self, kind: str) -> int:
        """How many processes of ``kind`` (worker, dispatcher) are alive."""
        return sum(1 for p in self.processes if p.kind == kind and p.alive)

    @property
    def workers_alive(self) -> int:
        return self.alive("worker")

    @property
    def dispatchers_alive(self) -> int:
        return self.alive("dispatcher")

    @property
    def stall_seconds(self) -> float:
        return self.thresholds.stall_seconds


async def read_health(store: Store, thresholds: Thresholds, now: float) -> Health:
    """Two reads: the queue (one aggregate over due tasks) and the heartbeat rows (a small table)."""
    depth, oldest = await store.tasks.queue_stats(now)
    beats = await store.processes.listed()
    processes = sorted((ProcessHealth.of(b, now, thresholds.liveness_seconds) for b in beats),
                       key=lambda p: (not p.alive, p.kind, p.silent_seconds, p.id))  # fmt: skip
    reasons = _stall_reasons(processes, oldest if depth else 0.0, thresholds)
    warnings: tuple[str, ...] = ()
    if not any(p.kind == "dispatcher" and p.alive for p in processes):
        warnings = ("no dispatcher is alive: callbacks are not being sent",)
    return Health(checked_at=now, thresholds=thresholds, processes=tuple(processes), queue_depth=depth,
                  oldest_waiting_seconds=oldest if depth else 0.0, stalled=bool(reasons), reasons=reasons,
                  warnings=warnings)  # fmt: skip


def _stall_reasons(processes: list[ProcessHealth], oldest: float, thresholds: Thresholds) -> tuple[str, ...]:
    reasons: list[str] = []
    workers = [p for p in processes if p.kind == "worker"]
    if not any(p.alive for p in workers):
        if workers:
            silent = min(p.silent_seconds for p in workers)
            reasons.append(f"no worker has heartbeated for {silent:.0f} s (alive means within "
                           f"{thresholds.liveness_seconds:g} s)")  # fmt: skip
        else:
            reasons.append("no worker is running (none has heartbeated in the last hour)")
    if oldest > thresholds.stall_seconds:
        reasons.append(f"the oldest waiting task has waited {oldest:.0f} s (more than {thresholds.stall_seconds:g} s)")
    return tuple(reasons)


def backlog_reader(store: Store, thresholds: Thresholds) -> Callable[[float], Awaitable[Health]]:
    """What ``metrics.BacklogGauges`` reads: this store's health as of a given time."""

    async def read(now: float) -> Health:
        return await read_health(store, thresholds, now)

    return read
