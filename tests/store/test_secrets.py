"""Secrets at rest on both engines: API keys only as hashes, webhook secrets only sealed."""

from __future__ import annotations

import pytest

from reelgate.auth import hash_key, key_prefix, new_api_key
from reelgate.callbacks import new_secret
from reelgate.config import ConfigError
from reelgate.sealing import SecretBox
from reelgate.store.sql import Store


async def _raw(store: Store, sql: str) -> list[str]:
    rows = await store.db.read(lambda c: c.all(sql))
    return [str(v) for r in rows for v in dict(r).values()]


async def test_nothing_secret_is_stored_in_clear(store: Store) -> None:
    secret, key = new_secret(), new_api_key()
    acct = await store.accounts.ensure_account("acme", None, secret)
    await store.accounts.add_key(acct, hash_key(key), key_prefix(key), "")
    cells = await _raw(store, "SELECT * FROM accounts") + await _raw(store, "SELECT * FROM api_keys")
    assert not any(secret in c or secret.removeprefix("whsec_") in c for c in cells)
    assert not any(key in c for c in cells)
    assert await store.accounts.webhook_secret(acct) == secret
    rotated = new_secret()
    await store.accounts.set_webhook_secret(acct, rotated)
    assert await store.accounts.webhook_secret(acct) == rotated
    assert not any(rotated in c for c in await _raw(store, "SELECT webhook_secret FROM accounts"))


async def test_a_different_key_cannot_open_a_sealed_secret(store: Store) -> None:
    acct = await store.accounts.ensure_account("acme", None, new_secret())
    store.accounts.box = SecretBox.ephemeral()
    with pytest.raises(ConfigError, match="REELGATE_SECRET_KEY"):
        await store.accounts.webhook_secret(acct)


def test_a_malformed_secret_key_is_a_clear_configuration_error() -> None:
    with pytest.raises(ConfigError, match="32 url-safe base64"):
        SecretBox(b"short")
