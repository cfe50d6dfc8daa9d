"""Verify a Reelgate webhook callback in your own receiver (Standard Webhooks signatures, ``whsec_`` secrets).

The one verifier: the server only signs (``reelgate.callbacks``) and re-exports this as ``reelgate.webhooks.verify``.
``tests/client/test_sync.py`` signs with the server's code and verifies with this one, so the two cannot drift
apart unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
SECRET_ID_PREFIX = "whk_"
DEFAULT_TOLERANCE = 300


class WebhookVerificationError(ValueError):
    """The webhook's signature, timestamp or headers do not check out."""


def secret_id(secret: str) -> str:
    """The id the server shows for ``secret`` (``GET /v1/webhooks/secret``): ``whk_`` and the first 16 hex digits of
    the SHA-256 of the secret. Compare it to tell whether the secret your receiver holds is the current one."""
    return SECRET_ID_PREFIX + hashlib.sha256(secret.encode()).hexdigest()[:16]


def _signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(body: bytes, headers: Mapping[str, str], secret: str, *, tolerance: int = DEFAULT_TOLERANCE,
           now: float | None = None) -> None:  # fmt: skip
    """Raise WebhookVerificationError unless ``body`` was signed with ``secret`` within ``tolerance`` seconds.

    ``headers`` may be any mapping; names are matched case-insensitively. Several space-separated
    signatures are accepted (as during a secret rotation); one valid signature is enough.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, sigs = lower.get("webhook-id"), lower.get("webhook-timestamp"), lower.get("webhook-signature")
    if not msg_id or not stamp or not sigs:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is too old or too far in the future")
    expected = _signature(secret, msg_id, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, s.encode()) for s in sigs.split()):
        raise WebhookVerificationError("no webhook-signature matches")
