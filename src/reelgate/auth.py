"""API keys: generation, hashing, and a short-lived cache of key hash → owner (revocations honoured within a TTL)."""

from __future__ import annotations

import hashlib
import secrets
import time

from reelgate.errors import AuthenticationFailed
from reelgate.store.accounts import AccountStore, KeyOwner

KEY_PREFIX = "rg_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    # Keys are 256-bit random, so one fast hash is enough; the database stores and compares hashes, never keys.
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    """The part of a key that is safe to show in lists and logs."""
    return key[:10]


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthenticationFailed("missing Authorization header; send 'Authorization: Bearer <api key>'",
                                   code="missing_api_key")  # fmt: skip
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        raise AuthenticationFailed("malformed Authorization header; expected 'Bearer <api key>'",
                                   code="malformed_api_key")  # fmt: skip
    return token


class KeyCache:
    """Resolves keys to owners with at most one database read per key per ``ttl`` seconds."""

    def __init__(self, accounts: AccountStore, ttl: float, max_entries: int = 100_000) -> None:
        self._accounts = accounts
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[float, KeyOwner]] = {}

    async def owner(self, header: str | None) -> KeyOwner:
        # Keyed by the token itself, so a hit costs no hash: the process holds presented keys for at most
        # ``ttl`` seconds, as it holds them while answering anyway; the database only ever sees the hash.
        token = bearer_token(header)
        now = time.monotonic()
        hit = self._entries.get(token)
        if hit is not None and now - hit[0] < self._ttl:
            owner = hit[1]
        else:
            found = await self._accounts.key_owner(hash_key(token))
            if found is None:
                self._entries.pop(token, None)
                raise AuthenticationFailed("invalid API key", code="invalid_api_key")
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[token] = (now, found)
            owner = found
        if owner.revoked:
            raise AuthenticationFailed("this API key has been revoked", code="revoked_api_key")
        if owner.expires_at is not None and owner.expires_at < time.time():
            raise AuthenticationFailed("this API key has expired", code="expired_api_key")
        return owner
