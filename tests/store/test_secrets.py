"""Secrets at rest on both engines: API keys only as hashes, webhook secrets only sealed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reelgate.auth import hash_key, key_prefix, new_api_key
from reelgate.callbacks import new_secret
from reelgate.config import ConfigError, Settings
from reelgate.sealing import SecretBox, load_box
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


def test_the_key_file_is_private_and_shared_by_concurrent_starters(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with ThreadPoolExecutor(8) as pool:
        boxes = list(pool.map(lambda _: load_box(settings), range(8)))
    sealed = boxes[0].seal("whsec_x")
    assert all(box.open(sealed) == "whsec_x" for box in boxes)
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]
