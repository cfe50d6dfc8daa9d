"""The operator use cases on both engines: what the CLI (and later a console) calls, with no CLI in the way."""

from __future__ import annotations

import time

import pytest

from reelgate.auth import hash_key
from reelgate.errors import InvalidRequest, NotFound
from reelgate.operators import Operators
from reelgate.store.sql import Store
from store.factories import account, done, new_task


async def test_a_new_key_makes_the_account_grants_and_authenticates(store: Store) -> None:
    ops = Operators(store)
    created = await ops.create_key("acme", credits=2500, group="vip", name="ci")
    owner = await store.accounts.key_owner(hash_key(created.key))
    assert owner is not None and owner.account_id == created.account_id and owner.user_group == "vip"
    assert created.prefix == created.key[:10] and created.granted == 2500
    view = await ops.account("acme")
    assert (view.name, view.user_group, view.balance.available) == ("acme", "vip", 2500)
    assert [(e["kind"], e["amount"], e["note"]) for e in view.ledger] == [("grant", 2500, "granted with key creation")]

    again = await ops.create_key("acme")  # an existing account: no grant, the group kept
    assert again.account_id == created.account_id and again.granted == 0
    assert (await ops.account("acme")).user_group == "vip"
    keys = await ops.list_keys("acme")
    assert [(k.prefix, k.account, k.name, k.revoked_at) for k in keys] == [
        (created.prefix, "acme", "ci", None),
        (again.prefix, "acme", "", None),
    ]
    assert await ops.list_keys("nobody") == []
    with pytest.raises(InvalidRequest, match="'acme'"):
        await ops.create_key("acme", credits=-1)


async def test_revoking_by_prefix_or_key_and_a_second_time(store: Store) -> None:
    ops = Operators(store)
    first, second = await ops.create_key("acme"), await ops.create_key("acme")
    assert await ops.revoke_key(first.prefix) == first.prefix
    assert await ops.revoke_key(second.key) == second.prefix  # the whole key works too
    owner = await store.accounts.key_owner(hash_key(first.key))
    assert owner is not None and owner.revoked
    assert all(k.revoked_at is not None and k.revoked_at <= time.time() for k in await ops.list_keys())
    with pytest.raises(NotFound, match=f"no active key with prefix '{first.prefix}'") as refused:
        await ops.revoke_key(first.prefix)
    assert refused.value.code == "api_key_not_found"


async def test_credits_limits_and_secrets_name_an_unknown_account(store: Store) -> None:
    ops = Operators(store)
    for use_case in (
        ops.account_id("ghost"),
        ops.grant_credits("ghost", 1000),
        ops.account("ghost"),
        ops.set_limits("ghost", rate_per_minute=5),
        ops.webhook_secret("ghost"),
        ops.rotate_webhook_secret("ghost"),
    ):
        with pytest.raises(NotFound, match="no account named 'ghost'") as refused:
            await use_case
        assert refused.value.code == "account_not_found"


async def test_grants_and_limits(store: Store) -> None:
    ops = Operators(store)
    created = await ops.create_key("acme")
    assert await ops.grant_credits("acme", 1500) == 1500
    view = await ops.account("acme", entries=5)
    assert view.balance.available == 1500 and [e["note"] for e in view.ledger] == ["operator grant"]
    with pytest.raises(InvalidRequest, match="'acme' must be more than 0"):
        await ops.grant_credits("acme", 0)

    limits = await ops.set_limits("acme", rate_per_minute=30, max_in_flight=2)
    assert (limits.account, limits.rate_per_minute, limits.max_in_flight) == ("acme", 30, 2)
    owner = await store.accounts.key_owner(hash_key(created.key))
    assert owner is not None and (owner.rate_limit_per_minute, owner.max_in_flight) == (30, 2)
    await ops.set_limits("acme")  # back to the service defaults
    owner = await store.accounts.key_owner(hash_key(created.key))
    assert owner is not None and (owner.rate_limit_per_minute, owner.max_in_flight) == (None, None)


async def test_the_webhook_secret_is_shown_and_rotated(store: Store) -> None:
    ops = Operators(store)
    await ops.ensure_account("acme")
    secret = await ops.webhook_secret("acme")
    assert secret.startswith("whsec_")
    rotated = await ops.rotate_webhook_secret("acme")
    assert rotated != secret and await ops.webhook_secret("acme") == rotated


async def test_a_task_of_any_account_is_found_by_id(store: Store) -> None:
    ops = Operators(store)
    other = await account(store, "other")
    acct = await account(store, "acme", credits=5000)
    ok, _ = await store.tasks.create(new_task(acct, price=1000), None)
    bad, _ = await store.tasks.create(new_task(other, price=1000), None)
    assert len(await store.tasks.claim("w1", time.time(), 30, 10)) == 2
    await store.tasks.finish(done(ok.id, "w1"))
    await store.tasks.finish(done(bad.id, "w1", ok=False))

    found = await ops.find_task(ok.id)
    assert (found.id, found.account, found.account_id) == (ok.id, "acme", acct)
    assert (found.status, found.model, found.provider, found.user_group) == (
        "completed",
        "kling-custom-element",
        "local",
        "default",
    )
    assert (found.price, found.charged, found.result, found.error_code) == (1000, 1000, {"element_id": "123"}, None)
    assert found.finished_at is not None and found.created_at <= found.updated_at <= found.finished_at + 1

    failed = await ops.find_task(bad.id)
    assert (failed.account, failed.status, failed.error_code, failed.error_message) == (
        "other",
        "failed",
        "unknown_error",
        "boom",
    )
    assert failed.charged == 0 and failed.result is None

    missing = "task-unified-0000000000-nothere"
    with pytest.raises(NotFound, match=f"no task '{missing}' in any account") as refused:
        await ops.find_task(missing)
    assert refused.value.code == "task_not_found"


async def test_new_accounts_get_their_own_secret(store: Store) -> None:
    ops = Operators(store)
    first, second = await ops.ensure_account("a"), await ops.ensure_account("b", "vip")
    assert first != second and await ops.ensure_account("a") == first
    assert await ops.webhook_secret("a") != await ops.webhook_secret("b")
