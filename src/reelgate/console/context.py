"""What every console page needs, built once per app: templates, operators' sign-in, actions, reads, the limiter."""

from __future__ import annotations

from dataclasses import dataclass

from reelgate.console.render import Pages
from reelgate.console_ops import Admins, ConsoleActions
from reelgate.oversight import Oversight
from reelgate.ratelimit import RateLimiter


@dataclass(frozen=True)
class Console:
    pages: Pages
    admins: Admins
    actions: ConsoleActions
    oversight: Oversight
    limiter: RateLimiter
