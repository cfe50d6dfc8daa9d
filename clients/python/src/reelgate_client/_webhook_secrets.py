"""``client.webhooks``: the signing secret's id, and its rotation (the new secret shown once); sync and async."""

from __future__ import annotations

from reelgate_client._base import AsyncAPIClient, SyncAPIClient
from reelgate_client._webhook_types import WebhookSecret

SECRET_PATH = "/v1/webhooks/secret"
ROTATE_PATH = "/v1/webhooks/secret/rotate"


class Webhooks:
    """Blocking access to the account's webhook signing secret."""

    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def retrieve_secret(self) -> WebhookSecret:
        """The current secret's id and date (``secret`` is None: reads never show it). ``.matches(secret)`` tells
        whether a secret you hold is the current one."""
        return WebhookSecret.from_dict(self._client.request("GET", SECRET_PATH))

    def rotate_secret(self) -> WebhookSecret:
        """Replace the secret at once and return the new one in ``secret``, shown this once: store it now. Every
        callback attempt from now on is signed with it; the old secret signs nothing more."""
        return WebhookSecret.from_dict(self._client.request("POST", ROTATE_PATH))


class AsyncWebhooks:
    """The async twin of Webhooks."""

    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def retrieve_secret(self) -> WebhookSecret:
        return WebhookSecret.from_dict(await self._client.request("GET", SECRET_PATH))

    async def rotate_secret(self) -> WebhookSecret:
        return WebhookSecret.from_dict(await self._client.request("POST", ROTATE_PATH))
