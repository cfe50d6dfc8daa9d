"""The polling schedule of ``tasks.wait``: back-off from 0.25 s by 1.5x up to 5 s, shaped by the task's estimate."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from reelgate_client._errors import TaskFailedError, WaitTimeoutError
from reelgate_client._types import Task

FIRST_INTERVAL = 0.25
GROWTH = 1.5
MAX_INTERVAL = 5.0
DEFAULT_WAIT_TIMEOUT = 600.0

ProgressCallback = Callable[[Task], object]


@dataclass
class Poller:
    """Decides, after each poll, whether to return, raise, or sleep and for how long; tells ``on_progress``."""

    timeout: float | None = DEFAULT_WAIT_TIMEOUT
    on_progress: ProgressCallback | None = None
    clock: Callable[[], float] = time.monotonic
    interval: float = FIRST_INTERVAL
    started: float = field(default=-1.0)
    _seen: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def step(self, task: Task) -> float | None:
        """None when ``task`` completed; the seconds to sleep when it is still running. Raises when it failed
        (TaskFailedError) or when the time limit is reached (WaitTimeoutError)."""
        if self.on_progress is not None and (task.status, task.progress) != self._seen:
            self._seen = (task.status, task.progress)
            self.on_progress(task)
        if task.status == "completed":
            return None
        if task.status == "failed":
            raise TaskFailedError(task)
        remaining = None if self.timeout is None else self.started + self.timeout - self.clock()
        if remaining is not None and remaining <= 0:
            raise WaitTimeoutError(task, self.timeout or 0.0)
        delay = min(self.interval, self._cap(task))
        self.interval = min(self.interval * GROWTH, MAX_INTERVAL)
        return delay if remaining is None else min(delay, remaining)

    @staticmethod
    def _cap(task: Task) -> float:
        # A task expected to take 20 s is polled at most every 2 s, so its end shows up promptly; a task expected
        # to take 10 minutes settles at the 5 s ceiling instead of hammering the hottest route.
        if task.estimated_time <= 0:
            return MAX_INTERVAL
        return max(FIRST_INTERVAL, min(MAX_INTERVAL, task.estimated_time / 10))
