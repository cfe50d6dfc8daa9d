"""``client.models``: the model catalogue with each model's billing rule and price for the caller's group."""

from __future__ import annotations

from reelgate_client._base import AsyncAPIClient, SyncAPIClient
from reelgate_client._pages import page_parts
from reelgate_client._types import Model


class Models:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def list(self) -> list[Model]:
        items, _, _, _ = page_parts(self._client.request("GET", "/v1/models"))
        return [Model.from_dict(i) for i in items]


class AsyncModels:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def list(self) -> list[Model]:
        items, _, _, _ = page_parts(await self._client.request("GET", "/v1/models"))
        return [Model.from_dict(i) for i in items]
