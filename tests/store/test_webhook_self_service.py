"""Webhook self-service on both engines: the signing secret's id and date, resending a delivery from each of its
states (a new round numbered on in the log), the operator's way in, and the task list by error code through its
own index."""

from __future__ import annotations

import hashlib
import time

import pytest

from reelgate.callbacks import new_secret
from reelgate.domain import TaskRecord
from reelgate.errors import Conflict, NotFound
from reelgate.operators import Operators
from reelgate.store.deliveries import Attempt
from reelgate.store.sql import Store
from reelgate.store.tasks import Finish, list_query
from reelgate.webhook_service import WebhookService, secret_id

from .factories import account, done, new_task, query_plan

HOOK = "https://example.com/hook"


async def _finished(store: Store, acct: int, callback: str | None = HOOK) -> TaskRecord:
    rec, _ = await store.tasks.create(new_task(acct, callback=callback), None)
    await store.tasks.claim("w", time.time(), 30, 10)
    finished = await store.tasks.finish(done(rec.id, "w"))
    assert finished is not None
    return finished


async def _fail_round(store: Store, delivery_id: str, now: float) -> None:
    """Four failed attempts in a row, as the dispatcher records them (numbered within the round)."""
    for number in range(1, 5):
        due = await store.deliveries.claim("d", now, 20, 1, per_account=8)
        assert [(d.id, d.attempts) for d in due] == [(delivery_id, number - 1)]
        outcome = "dead" if number == 4 else "retry"
        attempt = Attempt(delivery_id, number, now, 1.0, 500, "HTTP 500", outcome, None if number == 4 else now)
        assert await store.deliveries.record(attempt, "d")


async def test_the_secret_id_is_a_fingerprint_and_the_date_follows_rotation(store: Store) -> None:
    acct = await account(store)
    hooks = WebhookService(store)
    first = await hooks.secret(acct)
    assert first.id == secret_id(await store.accounts.webhook_secret(acct)) and first.created <= time.time()
    assert first.id == "whk_" + hashlib.sha256((await store.accounts.webhook_secret(acct)).encode()).hexdigest()[:16]
    rotated = await hooks.rotate(acct)
    assert rotated.secret == await store.accounts.webhook_secret(acct) and rotated.id == secret_id(rotated.secret)
    assert await hooks.secret(acct) == type(first)(rotated.id, rotated.created) and rotated.created >= first.created
    assert rotated.public() == {"object": "webhook_secret", "id": rotated.id, "created": int(rotated.created),
                                "secret": rotated.secret}  # fmt: skip
    assert "secret" not in first.public()
    # The operator's rotation is the same use case: it dates the secret too.
    before = time.time()
    await Operators(store).rotate_webhook_secret("acme")
    assert (await hooks.secret(acct)).created >= before
    await store.accounts.set_webhook_secret(acct, new_secret(), now=123.0)
    assert (await Operators(store).webhook_secret_info("acme")).created == 123.0


async def test_a_dead_delivery_is_resent_as_a_new_round_numbered_on(store: Store) -> None:
    acct = await account(store)
    task = await _finished(store, acct)
    hooks = WebhookService(store)
    delivery, _ = await store.deliveries.for_task(task.id)
    assert delivery is not None
    now = time.time()
    await _fail_round(store, delivery["id"], now)
    view = await hooks.resend(task)
    assert view["object"] == "callback_delivery" and view["status"] == "pending" and view["id"] == delivery["id"]
    assert (view["attempts"], view["resends"], view["in_flight"], view["task_id"]) == (4, 1, False, task.id)
    assert view["finished_at"] is None and view["next_attempt"].endswith("Z")
    # The dispatcher sees a fresh round (its retries run 1/2/4 s again); the log numbers on from 5.
    await _fail_round(store, delivery["id"], time.time())
    row, attempts = await store.deliveries.for_task(task.id)
    assert row is not None and (row["status"], row["attempts"], row["resends"]) == ("dead", 8, 1)
    assert [a["attempt"] for a in attempts] == list(range(1, 9))
    assert (await hooks.resend(task))["resends"] == 2
    due = await store.deliveries.claim("d", time.time(), 20, 1, per_account=8)
    assert await store.deliveries.record(Attempt(due[0].id, 1, time.time(), 2.0, 200, None, "delivered", None), "d")
    row, attempts = await store.deliveries.for_task(task.id)
    assert row is not None and (row["status"], row["attempts"]) == ("delivered", 9) and attempts[-1]["attempt"] == 9


async def test_a_delivery_that_is_not_dead_is_refused_saying_why(store: Store) -> None:
    acct = await account(store)
    hooks = WebhookService(store)
    task = await _finished(store, acct)
    with pytest.raises(Conflict, match="next attempt is due at 20") as queued:
        await hooks.resend(task)  # pending: due now, not yet claimed
    assert queued.value.code == "callback_pending" and queued.value.param == "task_id"
    due = await store.deliveries.claim("d", time.time(), 20, 1, per_account=8)
    with pytest.raises(Conflict, match="an attempt is under way right now") as in_flight:
        await hooks.resend(task)
    assert in_flight.value.code == "callback_pending"
    assert await store.deliveries.record(Attempt(due[0].id, 1, time.time(), 2.0, 200, None, "delivered", None), "d")
    with pytest.raises(Conflict, match="already delivered") as delivered:
        await hooks.resend(task)
    assert delivered.value.code == "callback_already_delivered"
    row, _ = await store.deliveries.for_task(task.id)
    assert row is not None and row["resends"] == 0  # none of the refusals changed the delivery

    silent = await _finished(store, acct, callback=None)
    with pytest.raises(Conflict, match="without a callback_url") as none:
        await hooks.resend(silent)
    assert none.value.code == "no_callback_url"
    running, _ = await store.tasks.create(new_task(acct, callback=HOOK), None)
    with pytest.raises(Conflict, match="is still pending") as unfinished:
        await hooks.resend(running)
    assert unfinished.value.code == "task_not_finished"


async def test_of_two_resends_at_once_one_starts_the_round(store: Store) -> None:
    acct = await account(store)
    task = await _finished(store, acct)
    delivery, _ = await store.deliveries.for_task(task.id)
    assert delivery is not None
    await _fail_round(store, delivery["id"], time.time())
    now = time.time()
    first, second = await store.deliveries.resend(task.id, now), await store.deliveries.resend(task.id, now)
    assert first.resent and not second.resent
    assert second.delivery is not None and second.delivery["status"] == "pending" and second.delivery["resends"] == 1


async def test_the_operator_resends_any_accounts_task(store: Store) -> None:
    acct = await account(store, "tenant")
    task = await _finished(store, acct)
    delivery, _ = await store.deliveries.for_task(task.id)
    assert delivery is not None
    await _fail_round(store, delivery["id"], time.time())
    ops = Operators(store)
    assert (await ops.resend_callback(task.id))["status"] == "pending"
    for unknown in ("task-unified-1-abcdefgh", "nonsense"):
        with pytest.raises(NotFound, match="in any account"):
            await ops.resend_callback(unknown)


async def test_tasks_by_error_code_newest_first_page_by_page(store: Store) -> None:
    acct, other = await account(store), await account(store, "other")
    made = []
    for code in ("request_cancelled", "generation_timeout", "request_cancelled", "request_cancelled"):
        rec, _ = await store.tasks.create(new_task(acct), None)
        failed = Finish(task_id=rec.id, status="failed", now=time.time(), guard="cancel", account_id=acct,
                        error_code=code, error_message="x")  # fmt: skip
        assert await store.tasks.finish(failed) is not None
        made.append((rec.id, code))
    await _finished(store, acct, callback=None)
    foreign, _ = await store.tasks.create(new_task(other), None)
    await store.tasks.finish(Finish(task_id=foreign.id, status="failed", now=time.time(), guard="cancel",
                                    account_id=other, error_code="request_cancelled", error_message="x"))  # fmt: skip
    cancelled = [task_id for task_id, code in reversed(made) if code == "request_cancelled"]

    async def page(after: str, limit: int) -> list[str]:
        found = await store.tasks.list_for_account(acct, status="", model="", after=after, limit=limit,
                                                   error_code="request_cancelled")  # fmt: skip
        return [t.id for t in found]

    assert await page("", 10) == cancelled
    assert await page("", 2) == cancelled[:2] and await page(cancelled[1], 2) == cancelled[2:]
    assert await store.tasks.list_for_account(acct, status="completed", model="", after="", limit=10,
                                              error_code="request_cancelled") == []  # fmt: skip
    assert len(await store.tasks.list_for_account(acct, status="", model="", after="", limit=10)) == 5


async def test_the_error_code_list_seeks_its_own_index_and_a_page_starts_at_its_cursor(store: Store) -> None:
    by_code, _ = list_query(1, status="failed", model="", error_code="request_cancelled", after=(1.0, "t"), limit=21)
    plan = await query_plan(store, by_code, {"a": 1, "n": 21, "status": "failed", "error_code": "request_cancelled",
                                             "ca": 1.0, "cid": "t"})  # fmt: skip
    assert "tasks_failed_by_account" in plan and "Seq Scan" not in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # read in order: the page ends the read
    plain, _ = list_query(1, status="", model="", error_code="", after=(1.0, "t"), limit=21)
    plan = await query_plan(store, plain, {"a": 1, "n": 21, "ca": 1.0, "cid": "t"})
    assert "tasks_by_account" in plan and "TEMP B-TREE" not in plan and "Sort" not in plan, plan
    if store.db.dialect == "sqlite":  # the cursor is a range of the index, not a filter over every newer task
        assert "tasks_by_account (account_id=? AND (created_at,id)<(?,?))" in plan, plan
    else:
        assert "ROW(created_at, id) < ROW(" in plan and "Index Cond" in plan, plan
