"""The operator web console at ``/console``: server-rendered pages (Jinja2 templates, one stylesheet, SVG charts,
no script) over the operator use cases, for operators signed in with ``reelgate admins create``.

``routes`` builds everything once per app and answers one Mount; each page module adds its routes:
``views_auth`` (sign-in and out), ``views_overview``, ``views_accounts``, ``views_tasks``, ``views_elements``
(the gallery), ``views_channels`` (channels and the audit log). ``security`` holds the session cookie, CSRF and the
sign-in rate limits, ``render`` the templates and headers, ``charts`` the SVG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Mount, Route

from reelgate.console import views_accounts, views_auth, views_channels, views_elements, views_overview, views_tasks
from reelgate.console.context import Console
from reelgate.console.render import Pages
from reelgate.console_ops import Admins, ConsoleActions
from reelgate.oversight import Oversight
from reelgate.ratelimit import RateLimiter

if TYPE_CHECKING:
    from reelgate.service import TaskService


def routes(service: TaskService, limiter: RateLimiter) -> list[BaseRoute]:
    pages = Pages()
    console = Console(pages, Admins(service.store), ConsoleActions(service), Oversight(service), limiter)
    inner: list[BaseRoute] = [Route("/static/console.css", pages.stylesheet, methods=["GET"])]
    for module in (views_auth, views_overview, views_accounts, views_tasks, views_elements, views_channels):
        inner.extend(module.routes(console))
    return [Mount("/console", routes=inner)]
