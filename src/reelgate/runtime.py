"""The composition root for long-running processes: builds store, service, providers, worker, dispatcher and app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.applications import Starlette

from reelgate import netguard
from reelgate.api.app import create_app
from reelgate.api.context import ApiContext
from reelgate.assets import AssetStore
from reelgate.auth import KeyCache
from reelgate.catalog import default_catalog
from reelgate.config import Settings
from reelgate.dispatcher import Dispatcher
from reelgate.domain import TaskRecord
from reelgate.media.pool import MediaPool
from reelgate.metrics import Metrics
from reelgate.providers import Provider
from reelgate.providers.registry import build_providers
from reelgate.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from reelgate.sealing import load_box
from reelgate.service import TaskService
from reelgate.storage import storage_from_settings
from reelgate.store.engines import make_database
from reelgate.store.sql import Store
from reelgate.wakeup import CALLBACK_DUE, TASK_DUE, WakeListener, WakeSender, wake_dir_from_env
from reelgate.worker import Worker

log = logging.getLogger("reelgate")


@dataclass
class Runtime:
    settings: Settings
    store: Store
    service: TaskService
    metrics: Metrics
    providers: dict[str, Provider]
    worker: Worker | None = None
    dispatcher: Dispatcher | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.store.db.open()
        if self.worker is not None:
            self.tasks.append(asyncio.create_task(self.worker.run(self.stop)))
        if self.dispatcher is not None:
            self.tasks.append(asyncio.create_task(self.dispatcher.run(self.stop)))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for provider in self.providers.values():
            with contextlib.suppress(Exception):
                await provider.aclose()
        await self.service.aclose()  # stops the media pool's processes, if any started
        await self.store.close()
        self.metrics.close()  # under serve --workers N: this process's gauges leave the shared sums


def build_runtime(
    settings: Settings,
    *,
    worker: bool = True,
    dispatcher: bool = True,
    resolver: netguard.Resolver | None = None,
    media_pool_for_tasks: bool = True,
) -> Runtime:
    """Wire every part from settings; nothing touches the network or the database until ``start``.

    ``media_pool_for_tasks``: the worker's CPU media work goes to the media pool's processes (a worker inside the API
    process, whose event loop must stay free); False in a worker process of its own, which uses its own threads."""
    store = Store(make_database(settings.resolved_database_url), load_box(settings))
    # Every stored object registered to its task; results served for the configured retention.
    assets = AssetStore(storage_from_settings(settings), store.uploads,
                        result_retention=settings.result_retention_days * 86400)  # fmt: skip
    media = MediaPool.from_settings(settings)  # one pool for submits and the worker's media work; no process yet
    task_media = media if media_pool_for_tasks else None
    providers = build_providers(settings, assets, task_media, store.upstream_slots)  # caps shared by every process
    service = TaskService(settings, store, default_catalog(settings.prices), assets, providers, media)
    metrics = Metrics()
    rt = Runtime(settings, store, service, metrics, providers)
    if worker:
        rt.worker = Worker(service, providers, concurrency=settings.worker_concurrency, on_event=metrics.worker_event)
    if dispatcher:
        rt.dispatcher = Dispatcher(settings, store, metrics=metrics, resolver=resolver)
    service.on_terminal.append(lambda task: _on_terminal(rt, task))
    service.on_submit.append(lambda task: _on_submit(metrics, task))
    if rt.dispatcher is not None:  # a resent callback goes out now, not at the dispatcher's next poll (up to 1 s)
        dispatcher_wake = rt.dispatcher.wake
        service.on_callback_queued.append(lambda _task_id: dispatcher_wake.set())
    return rt


def listen_for_wakeups(rt: Runtime) -> WakeListener | None:
    """In a worker process: wake its worker and dispatcher when the API says work is due (reelgate.wakeup)."""
    directory = wake_dir_from_env()
    handlers: dict[bytes, Callable[[], None]] = {}
    if rt.worker is not None:
        handlers[TASK_DUE] = rt.worker.wake.set
    if rt.dispatcher is not None:
        handlers[CALLBACK_DUE] = rt.dispatcher.wake.set
    if directory is None or not handlers:
        return None
    listener = WakeListener(directory, handlers)
    listener.start()
    return listener


def _wake_others(rt: Runtime) -> None:
    """In an API process whose tasks run in worker processes: tell them at once when a task or callback is due."""
    directory = wake_dir_from_env()
    if directory is None:
        return
    sender = WakeSender(directory)
    rt.service.on_submit.append(lambda _task: sender.notify(TASK_DUE))
    rt.service.on_callback_queued.append(lambda _task_id: sender.notify(CALLBACK_DUE))
    rt.service.on_terminal.append(lambda task: sender.notify(CALLBACK_DUE) if task.callback_url else None)


def check_providers(settings: Settings) -> None:
    """Build and close the configured providers once, so a bad provider configuration fails before serving."""

    async def build_and_close() -> None:
        for provider in build_providers(settings, AssetStore(storage_from_settings(settings))).values():
            await provider.aclose()

    asyncio.run(build_and_close())


def _on_submit(metrics: Metrics, task: TaskRecord) -> None:
    # Told only for new tasks: an idempotent replay creates and reserves nothing, so it counts nothing.
    metrics.task_submitted(task.model, task.price)


def _on_terminal(rt: Runtime, task: TaskRecord) -> None:
    rt.metrics.tasks_finished.labels(task.model, task.status, task.error_code or "").inc()
    rt.metrics.credits.labels("capture" if task.status == "completed" else "release").inc(task.price / 1000)
    if task.callback_url and rt.dispatcher is not None:
        rt.dispatcher.wake.set()


def _limiter(settings: Settings, metrics: Metrics) -> RateLimiter:
    return RedisRateLimiter(settings.redis_url, registry=metrics.registry) if settings.redis_url else LocalRateLimiter()


def build_app(settings: Settings, *, worker: bool = True, dispatcher: bool = True,
              resolver: netguard.Resolver | None = None) -> tuple[Starlette, Runtime]:  # fmt: skip
    rt = build_runtime(settings, worker=worker, dispatcher=dispatcher, resolver=resolver)
    keys = KeyCache(rt.store.accounts, settings.key_cache_ttl)
    ctx = ApiContext(service=rt.service, keys=keys, metrics=rt.metrics, limiter=_limiter(settings, rt.metrics))
    ctx.on_startup.append(rt.start)
    ctx.on_shutdown.append(rt.close)
    if rt.worker is not None:
        worker_wake = rt.worker.wake
        rt.service.on_submit.append(lambda task: worker_wake.set())
    else:
        _wake_others(rt)
    return create_app(ctx), rt


def app_from_env() -> Starlette:
    """Uvicorn factory for ``serve --workers N``: each API process builds its own app from the environment."""
    from reelgate.logs import configure

    settings = Settings.from_env()
    configure(settings.log_level, settings.log_json, access=settings.access_log)
    # Set by ``serve --no-tasks``: this process answers the API only; separate workers run the tasks.
    tasks = os.environ.get("REELGATE_SERVE_NO_TASKS") != "1"
    return build_app(settings, worker=tasks, dispatcher=tasks)[0]
