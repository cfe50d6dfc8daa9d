"""``client.credits``: the calling key's and its account's remaining and used credits."""

from __future__ import annotations

from reelgate_client._base import AsyncAPIClient, SyncAPIClient
from reelgate_client._types import Credits


class CreditsResource:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def retrieve(self) -> Credits:
        return Credits.from_dict(self._client.request("GET", "/v1/credits"))


class AsyncCreditsResource:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def retrieve(self) -> Credits:
        return Credits.from_dict(await self._client.request("GET", "/v1/credits"))
