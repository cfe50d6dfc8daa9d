"""Verify Reelgate's webhook callbacks in your own receiver: ``from reelgate.webhooks import verify``.

The verifying half lives in the client distribution (``reelgate_client.verify_webhook``), the one thing a receiver
needs to install; this name is kept for receivers written against the server package.
"""

from reelgate_client import WebhookVerificationError
from reelgate_client import verify_webhook as verify

__all__ = ["WebhookVerificationError", "verify"]
