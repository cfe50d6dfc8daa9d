"""Per-second settlement on both engines: a completed task that made fewer seconds than it reserved captures
round-up(reservation x billed / seconds), capped at the reservation, and releases the rest, to the millicredit."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from reelgate.store.sql import Store
from store.factories import account, done, new_task

RESERVED = 53_570  # 10 s at 5,357 millicredits a second
GRANT = 100_000


async def _run(store: Store, billed: float | None, *, ok: bool = True, billing: bool = True) -> tuple[int, dict]:
    """Submit, claim and finish one 10 s task; the account's balance and ledger sums after it."""
    acct = await account(store, credits=GRANT)
    params = {"prompt": "a fox", "billing": {"seconds": 10}} if billing else {"prompt": "a fox"}
    task = replace(new_task(acct, price=RESERVED), params=params, billing_rule="per_second")
    rec, _ = await store.tasks.create(task, None)
    await store.tasks.claim("w1", time.time(), 30, 1)
    finished = await store.tasks.finish(replace(done(rec.id, "w1", ok=ok), billed_seconds=billed))
    assert finished is not None
    view = await store.accounts.view(acct)
    sums = await store.accounts.ledger_sums(acct)
    charged = finished.charged if finished.charged is not None else -1
    assert finished.public()["usage"]["credits_reserved"] == RESERVED / 1000
    assert view.balance.reserved == 0 and view.balance.captured == charged
    assert view.balance.available == GRANT - charged and view.balance.granted == GRANT
    assert sums.get("reserve") == RESERVED and sums.get("capture", 0) + sums.get("release", 0) == RESERVED
    return charged, sums


@pytest.mark.parametrize(
    ("billed", "charged"),
    [
        (4.2, 22_500),  # 5,357 x 4.2 = 22,499.4: rounded up
        (5.0, 26_785),  # exact: nothing rounded
        (0.1 + 0.2, 1_608),  # 0.30000000000000004 is read as 0.30000000000000004, not as 0.3 (1,607.1 -> 1,608)
        (10.0, RESERVED),
        (12.5, RESERVED),  # never more than the reservation
        (0.0, 0),
        (None, RESERVED),  # the provider did not say: the reservation is captured
    ],
)
async def test_partial_capture_is_exact_to_the_millicredit(store: Store, billed: float | None, charged: int) -> None:
    got, sums = await _run(store, billed)
    assert got == charged
    assert sums.get("capture") == charged
    assert sums.get("release", 0) == RESERVED - charged


async def test_a_failed_per_second_task_releases_everything(store: Store) -> None:
    got, sums = await _run(store, 4.0, ok=False)
    assert got == 0 and sums.get("release") == RESERVED and "capture" not in sums


async def test_billed_seconds_without_billing_params_capture_the_reservation(store: Store) -> None:
    got, _ = await _run(store, 3.0, billing=False)
    assert got == RESERVED
