"""What the API needs from the layers below, built by the composition root and passed to create_app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from reelgate.auth import KeyCache
from reelgate.metrics import Metrics
from reelgate.ratelimit import RateLimiter
from reelgate.service import TaskService

Background = Callable[[], Awaitable[None]]


@dataclass
class ApiContext:
    service: TaskService
    keys: KeyCache
    metrics: Metrics
    limiter: RateLimiter
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    shutting_down: bool = False
