"""The two entry points, ``Reelgate`` and ``AsyncReelgate``: configuration plus the tasks, elements, videos,
models, credits and webhooks."""

from __future__ import annotations

import httpx

from reelgate_client._base import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, AsyncAPIClient, SyncAPIClient, Timeout
from reelgate_client._credits import AsyncCreditsResource, CreditsResource
from reelgate_client._elements import AsyncElements, Elements
from reelgate_client._files import AsyncFiles, Files
from reelgate_client._models import AsyncModels, Models
from reelgate_client._tasks import AsyncTasks, Tasks
from reelgate_client._videos import AsyncVideos, Videos
from reelgate_client._webhook_secrets import AsyncWebhooks, Webhooks


class Reelgate(SyncAPIClient):
    """A blocking client. ``api_key`` and ``base_url`` default to ``REELGATE_API_KEY`` and ``REELGATE_BASE_URL``
    (else ``http://127.0.0.1:8000``). Use it as a context manager, or call ``close()``."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries, http_client=http_client
        )
        self.tasks = Tasks(self)
        self.elements = Elements(self, self.tasks)
        self.videos = Videos(self, self.tasks)
        self.models = Models(self)
        self.credits = CreditsResource(self)
        self.files = Files(self)
        self.webhooks = Webhooks(self)


class AsyncReelgate(AsyncAPIClient):
    """The asyncio twin of Reelgate: the same resources and methods, awaited; ``async with`` it or ``await close()``."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries, http_client=http_client
        )
        self.tasks = AsyncTasks(self)
        self.elements = AsyncElements(self, self.tasks)
        self.videos = AsyncVideos(self, self.tasks)
        self.models = AsyncModels(self)
        self.credits = AsyncCreditsResource(self)
        self.files = AsyncFiles(self)
        self.webhooks = AsyncWebhooks(self)
