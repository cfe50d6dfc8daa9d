"""Checks shared by the end-to-end tests that kill processes mid-work: every task ends, and each is settled once."""

from __future__ import annotations

import time

import httpx

from reelgate.store.sql import Store


def wait_terminal(base: str, key: str, ids: list[str], timeout: float = 60) -> list[dict[str, object]]:
    """The tasks, once every one of them is completed or failed (polled over the API)."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {key}"}
    while time.monotonic() < deadline:
        tasks = [httpx.get(f"{base}/v1/tasks/{i}", headers=headers).json() for i in ids]
        if all(t["status"] in ("completed", "failed") for t in tasks):
            return tasks
        time.sleep(0.1)
    raise AssertionError("not every task reached a terminal state")


async def ledger_is_exact(db_url: str, ids: list[str], account: str = "acme") -> None:
    """One reservation per task, each captured or released, nothing left reserved, and the balance adds up."""
    store = await Store.open(db_url, pool_size=2)
    try:
        acct = await store.accounts.account_id(account)
        assert acct is not None
        view = await store.accounts.view(acct)
        sums = await store.accounts.ledger_sums(acct)
        assert view.balance.reserved == 0 and view.in_flight == 0
        assert sums["reserve"] == len(ids) * 1000 == sums.get("capture", 0) + sums.get("release", 0)
        assert view.balance.captured == sums.get("capture", 0)
        assert view.balance.granted == sums["grant"]
    finally:
        await store.close()
