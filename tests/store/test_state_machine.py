"""A hypothesis state machine over the real store: whatever the order of submits, claims, progress, finishes,
cancels, lease expiries, retries and crash-restarts, the ledger balances and nothing is settled twice."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from dbs import truncate
from reelgate.callbacks import new_secret
from reelgate.domain import FAILED, TERMINAL_STATUSES
from reelgate.errors import InsufficientQuota
from reelgate.store.sql import Store
from reelgate.store.tasks import Finish

from .factories import new_task

WORKERS = ("w1", "w2", "w3")


class StoreMachine(RuleBasedStateMachine):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.store = self.run(Store.open(self.url, pool_size=2))
        self.now = 1_000_000.0
        self.tasks: list[str] = []
        self.terminal: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, int] = {}
        self.generation = 0  # bumps on a crash-restart: every worker comes back under a new name

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def owner(self, worker: str) -> str:
        return f"{worker}#{self.generation}"

    @initialize(credits=st.integers(0, 6))
    def account(self, credits: int) -> None:
        self.account_id = self.run(self.store.accounts.ensure_account("acct", None, new_secret()))
        self.granted = credits * 1000
        if credits:
            self.run(self.store.accounts.grant(self.account_id, self.granted, "start"))

    @rule(callback=st.booleans())
    def submit(self, callback: bool) -> None:
        task = new_task(self.account_id, callback="https://example.com/h" if callback else None)
        task = replace(task, now=self.now, deadline=self.now + 100)
        try:
            rec, _ = self.run(self.store.tasks.create(task, None))
        except InsufficientQuota:
            return
        self.tasks.append(rec.id)
        self.progress[rec.id] = 0

    @rule(worker=st.sampled_from(WORKERS))
    def claim(self, worker: str) -> None:
        self.run(self.store.tasks.claim(self.owner(worker), self.now, 10, 2))

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), worker=st.sampled_from(WORKERS), percent=st.integers(0, 99))
    def report_progress(self, data: st.DataObject, worker: str, percent: int) -> None:
        task_id = data.draw(st.sampled_from(self.tasks))
        self.run(self.store.tasks.progress(task_id, self.owner(worker), percent, self.now))

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), worker=st.sampled_from(WORKERS), ok=st.booleans())
    def finish(self, data: st.DataObject, worker: str, ok: bool) -> None:
        task_id = data.draw(st.sampled_from(self.tasks))
        finish = Finish(task_id=task_id, status="completed" if ok else FAILED, now=self.now, guard="owner",
                        owner=self.owner(worker), result={"element_id": "1"} if ok else None,
                        error_code=None if ok else "unknown_error", error_message=None if ok else "x",
                        webhook_id=f"msg_{task_id}")  # fmt: skip
        self.run(self.store.tasks.finish(finish))

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.tasks))
        finish = Finish(task_id=task_id, status=FAILED, now=self.now, guard="cancel", account_id=self.account_id,
                        error_code="request_cancelled", error_message="x", webhook_id=f"msg_{task_id}")  # fmt: skip
        self.run(self.store.tasks.finish(finish))

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), worker=st.sampled_from(WORKERS))
    def retry_later(self, data: st.DataObject, worker: str) -> None:
        task_id = data.draw(st.sampled_from(self.tasks))
        self.run(self.store.tasks.reschedule(task_id, self.owner(worker), self.now + 5, {"retry": 1}))

    @rule(seconds=st.sampled_from([1.0, 11.0, 200.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds  # 11 s expires every lease; 200 s passes every deadline

    @rule()
    def deadline_sweep(self) -> None:
        for task_id in self.run(self.store.tasks.overdue(self.now)):
            self.run(self.store.tasks.finish(Finish(task_id=task_id, status=FAILED, now=self.now, guard="expired",
                                                    error_code="generation_timeout", error_message="late",
                                                    webhook_id=f"msg_{task_id}")))  # fmt: skip

    @rule()
    def crash_restart(self) -> None:
        self.run(self.store.close())
        self.store = self.run(Store.open(self.url, pool_size=2))
        self.generation += 1

    @invariant()
    def ledger_balances(self) -> None:
        if not hasattr(self, "account_id"):
            return
        view = self.run(self.store.accounts.view(self.account_id))
        sums = self.run(self.store.accounts.ledger_sums(self.account_id))
        b = view.balance
        assert b.granted == self.granted == sums.get("grant", 0)
        assert min(b.available, b.reserved, b.captured) >= 0
        assert sums.get("reserve", 0) == b.reserved + sums.get("capture", 0) + sums.get("release", 0)
        assert b.captured == sums.get("capture", 0)

    @invariant()
    def terminal_tasks_never_change_and_progress_never_drops(self) -> None:
        for task_id in self.tasks:
            rec = self.run(self.store.tasks.get(task_id))
            assert rec.progress >= self.progress[task_id]
            self.progress[task_id] = rec.progress
            if task_id in self.terminal:
                assert rec.public() == self.terminal[task_id]
            elif rec.status in TERMINAL_STATUSES:
                self.terminal[task_id] = rec.public()
                assert rec.charged == (rec.price if rec.status == "completed" else 0)
                delivery, _ = self.run(self.store.deliveries.for_task(task_id))
                assert (delivery is not None) == (rec.callback_url is not None)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_store_state_machine(engine: str, sqlite_template: Path, request: pytest.FixtureRequest) -> None:
    run_settings = settings(max_examples=25, stateful_step_count=30, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    workdir = Path(tempfile.mkdtemp())
    pg_url = request.getfixturevalue("pg_session_url") if engine == "postgresql" else ""

    def fresh_machine() -> StoreMachine:
        if pg_url:
            asyncio.run(truncate(pg_url))
            return StoreMachine(pg_url)
        path = workdir / f"{len(list(workdir.iterdir()))}.db"
        shutil.copy(sqlite_template, path)
        return StoreMachine(f"sqlite:///{path}")

    try:
        run_state_machine_as_test(fresh_machine, settings=run_settings)
    finally:
        shutil.rmtree(workdir)
