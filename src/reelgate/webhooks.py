"""Verify Reelgate's webhook callbacks in your own receiver: ``from reelgate.webhooks import verify``."""

from reelgate.callbacks import WebhookVerificationError, verify

__all__ = ["WebhookVerificationError", "verify"]
