"""Idempotency-Keys are scoped to the API key: another tenant (or another key) reusing one gets its own task."""

from __future__ import annotations

import asyncio

from harness import Api, auth, b64_jpeg, image_body


async def _balance(api: Api, account: str) -> tuple[int, int]:
    """Available, and held or spent (the worker may capture a reservation at any moment)."""
    acct = await api.rt.store.accounts.account_id(account)
    assert acct is not None
    b = (await api.rt.store.accounts.view(acct)).balance
    return b.available, b.reserved + b.captured


async def test_another_tenant_with_the_same_key_and_body_gets_its_own_task(api: Api) -> None:
    a, b = await api.key("tenant-a", credits=2), await api.key("tenant-b", credits=2)
    body = image_body(b64_jpeg(1), b64_jpeg(2))
    first = await api.submit(a, body, **{"Idempotency-Key": "order-42"})
    theirs = await api.submit(b, body, **{"Idempotency-Key": "order-42"})
    assert first.status_code == 200 and theirs.status_code == 200, theirs.text
    assert theirs.json()["id"] != first.json()["id"]  # never tenant A's task
    # B's task is B's: B reads it, A cannot, and each tenant paid for exactly its own submit.
    assert (await api.client.get(f"/v1/tasks/{theirs.json()['id']}", headers=auth(b))).status_code == 200
    assert (await api.client.get(f"/v1/tasks/{theirs.json()['id']}", headers=auth(a))).status_code == 404
    assert (await api.client.get(f"/v1/tasks/{first.json()['id']}", headers=auth(b))).status_code == 404
    assert await _balance(api, "tenant-a") == (1000, 1000)
    assert await _balance(api, "tenant-b") == (1000, 1000)
    # Each tenant's replay still finds its own task.
    assert (await api.submit(a, body, **{"Idempotency-Key": "order-42"})).json()["id"] == first.json()["id"]
    assert (await api.submit(b, body, **{"Idempotency-Key": "order-42"})).json()["id"] == theirs.json()["id"]
    assert await _balance(api, "tenant-b") == (1000, 1000)


async def test_another_tenant_with_the_same_key_and_another_body_is_not_told_of_the_first(api: Api) -> None:
    a, b = await api.key("tenant-a", credits=1), await api.key("tenant-b", credits=1)
    await api.submit(a, image_body(b64_jpeg(1), b64_jpeg(2)), **{"Idempotency-Key": "k"})
    # A 409 here would tell B that someone used this key: B's key space is its own.
    other = await api.submit(b, image_body(b64_jpeg(3), b64_jpeg(4)), **{"Idempotency-Key": "k"})
    assert other.status_code == 200, other.text


async def test_two_tenants_racing_with_one_key_each_get_their_own_task(api: Api) -> None:
    a, b = await api.key("tenant-a", credits=1), await api.key("tenant-b", credits=1)
    body = image_body(b64_jpeg(1), b64_jpeg(2))
    ra, rb = await asyncio.gather(*(api.submit(k, body, **{"Idempotency-Key": "same"}) for k in (a, b)))
    assert ra.status_code == rb.status_code == 200 and ra.json()["id"] != rb.json()["id"]


async def test_a_second_key_of_the_same_account_has_its_own_key_space(api: Api) -> None:
    one, two = await api.key("acme", credits=2), await api.key("acme", credits=0)
    body = image_body(b64_jpeg(1), b64_jpeg(2))
    first = await api.submit(one, body, **{"Idempotency-Key": "x"})
    second = await api.submit(two, body, **{"Idempotency-Key": "x"})
    assert first.json()["id"] != second.json()["id"]  # per API key, as the README says
    assert await _balance(api, "acme") == (0, 2000)
