"""Claim scale: what one worker's claim costs with 10 tasks due and with 10,000 due in one account, on each engine.

The worker's claim takes due tasks from the accounts in turns (store/task_leases.py), through two indexes of live
tasks. Its cost must not grow with the backlog: one tenant that submits ten thousand elements, or holds ten thousand
open Kling tasks between polls, must cost every claim what a tenant with ten does.

What runs: a fresh database per engine (SQLite in a temp directory; PostgreSQL, when reachable, as a database of
its own on REELGATE_BENCH_PG_URL's server, dropped at the end), migrated; rows written straight into ``tasks``
(20,000 finished tasks of 50 accounts as history in every scenario, so an index of all tasks would show). Scenarios:

* ``due 10``: the loud account has 10 tasks due (or ``--slots``, when more), one other account 1;
* ``due 10000``: the loud account has 10,000 due, the other 1;
* ``open 10000``: the loud account has 10,000 open tasks not due yet (between two polls) and 10 due (or
  ``--slots``), the other 1;
* ``1000 accounts``: as ``due 10``, and ``--accounts`` more accounts with one open task each. Not judged: a claim
  steps through every account with live tasks, so this is what the turns cost per account.

In each, ``--rounds`` claims of ``--slots`` tasks by the real claim (store/task_leases.py, one write transaction,
committed and synced as the worker's are), each followed by an untimed release of what it took, so every round sees
the same queue. Reported: the time of the claim's statements (median and p90, in ms: what the backlog could make
grow) and of the whole claim with its commit and the log's fsync (median: what a worker waits; on a shared machine
mostly the fsync). Target: the statements' median at 10,000 due or open is within 2x of the one with the small
queue, on every engine.

    .venv/bin/python bench/claim_scale.py                  # both engines, 4 slots, 200 rounds
    .venv/bin/python bench/claim_scale.py --slots 64 --db sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, cast

from benchkit import database, machine, percentile, report_verdict, table

from reelgate.store import task_leases
from reelgate.store.db import Conn, Database, Params, Row, T, Work
from reelgate.store.migrate import upgrade
from reelgate.store.sql import Store

BIG = 10_000


def scenarios(slots: int, spread: int) -> dict[str, tuple[int, int, int]]:
    """Each scenario: the loud account's tasks due and tasks open but not due, and how many more accounts have one
    open task each. The small queue holds at least a claim's worth, so every scenario's claims take as many tasks
    and only the backlog differs."""
    small = max(10, slots)
    return {f"due {small}": (small, 0, 0), f"due {BIG}": (BIG, 0, 0), f"open {BIG}": (small, BIG, 0),
            f"{spread} accounts": (small, 0, spread)}  # fmt: skip


HISTORY, HISTORY_ACCOUNTS = 20_000, 50
TARGET_RATIO = 2.0
_INSERT = (
    "INSERT INTO tasks (id, account_id, api_key_id, model, provider, status, created, created_at, updated_at, "
    "finished_at, deadline, run_after, params, price, user_group, billing_rule, estimated_time) VALUES (:id, :a, 1, "
    "'kling-custom-element', 'local', :st, :ci, :c, :c, :fin, :dl, :ra, '{}', 0, 'default', 'per_call', 30)"
)


def _rows(prefix: str, account: int, count: int, status: str, run_after: float, now: float) -> list[dict[str, Any]]:
    finished = now - 60 if status == "completed" else None
    return [{"id": f"{prefix}{i:06d}", "a": account, "st": status, "ci": int(now) - 3600, "c": now - 3600 + i * 0.01, "fin": finished,
             "dl": now + 3600, "ra": run_after + i * 0.001} for i in range(count)]  # fmt: skip


async def seed(store: Store, due: int, open_: int, spread: int, now: float) -> None:
    accounts = [await store.accounts.ensure_account(f"acct{i}", None, "s" * 32) for i in range(HISTORY_ACCOUNTS)]
    loud, quiet = accounts[0], accounts[-1]
    await store.db.write(lambda c: c.many("INSERT INTO accounts (name, webhook_secret, created) VALUES (:n, 's', 0)",
                                          [{"n": f"spread{i}"} for i in range(spread)]))  # fmt: skip
    spread_ids = await store.db.read(lambda c: c.all("SELECT id FROM accounts WHERE name LIKE 'spread%'"))
    rows = [r for i, a in enumerate(accounts) for r in _rows(f"h{i:02d}-", a, HISTORY // len(accounts), "completed",
                                                             now - 7200, now)]  # fmt: skip
    rows += _rows("due-", loud, due, "pending", now - 600, now)
    rows += _rows("open-", loud, open_, "processing", now + 30, now)
    rows += _rows("quiet-", quiet, 1, "pending", now - 1, now)
    rows += [r for a in spread_ids for r in _rows(f"s{a['id']}-", int(a["id"]), 1, "processing", now + 30, now)]

    async def insert(c: Any) -> None:
        await c.many(_INSERT, rows)

    await store.db.write(insert)


async def release(store: Store, owner: str) -> None:
    sql = "UPDATE tasks SET lease_owner = NULL, lease_expires = NULL WHERE lease_owner = :me"
    await store.db.write(lambda c: c.run(sql, {"me": owner}))


class TimedConn:
    """A connection that adds up the time its statements take (the claim's cost without its commit)."""

    def __init__(self, conn: Conn, spent: list[float]) -> None:
        self.conn, self.spent = conn, spent

    async def _timed(self, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self.spent.append((time.perf_counter() - started) * 1000)

    async def one(self, sql: str, params: Params | None = None) -> Row | None:
        return await self._timed(self.conn.one(sql, params))

    async def all(self, sql: str, params: Params | None = None) -> list[Row]:
        return await self._timed(self.conn.all(sql, params))

    async def run(self, sql: str, params: Params | None = None) -> int:
        return await self._timed(self.conn.run(sql, params))

    async def many(self, sql: str, rows: Sequence[Params]) -> None:
        await self._timed(self.conn.many(sql, rows))


class TimedDb:
    """The store's database, its writes run on a ``TimedConn``."""

    def __init__(self, db: Database) -> None:
        self.db, self.dialect, self.spent = db, db.dialect, list[float]()

    async def write(self, work: Work[T]) -> T:
        return await self.db.write(lambda c: work(TimedConn(c, self.spent)))


async def one_claim(store: Store, slots: int) -> tuple[float, float, int]:
    """One claim of up to ``slots`` tasks by the store's own claim: its statements' time and its whole time in ms,
    and how many it took."""
    timed = TimedDb(store.db)
    lock = " FOR UPDATE SKIP LOCKED" if store.db.dialect == "postgresql" else ""
    started = time.perf_counter()
    taken = await task_leases.claim(cast(Database, timed), lock, "bench", time.time(), 30.0, slots)
    elapsed = (time.perf_counter() - started) * 1000
    assert taken, "the claim took nothing"
    return sum(timed.spent), elapsed, len(taken)


async def measure(url: str, scenario: str, slots: int, rounds: int, spread: int) -> dict[str, Any]:
    now = time.time()
    store = await Store.open(url, pool_size=2)
    try:
        await seed(store, *scenarios(slots, spread)[scenario], now)
    finally:
        await store.close()  # SQLite: the seed leaves the log, so no claim below waits on its checkpoint
    store = await Store.open(url, pool_size=2)
    try:
        statements, claims, took = [], [], 0
        for r in range(rounds + 5):  # the first five warm caches and plans
            spent, elapsed, took = await one_claim(store, slots)
            await release(store, "bench")
            if r >= 5:
                statements.append(spent)
                claims.append(elapsed)
        return {"median_ms": statistics.median(statements), "p90_ms": percentile(statements, 90),
                "claim_median_ms": statistics.median(claims), "took": took}  # fmt: skip
    finally:
        await store.close()


def run_engine(kind: str, slots: int, rounds: int, spread: int) -> dict[str, dict[str, Any]]:
    out = {}
    for scenario in scenarios(slots, spread):
        if kind == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                out[scenario] = run_one(f"sqlite:///{Path(tmp) / 'claims.db'}", scenario, slots, rounds, spread)
        else:
            with database("postgres") as db:
                out[scenario] = run_one(db.url, scenario, slots, rounds, spread)
    return out


def run_one(url: str, scenario: str, slots: int, rounds: int, spread: int) -> dict[str, Any]:
    upgrade(url)  # before the loop: the migration runs one of its own on PostgreSQL
    return asyncio.run(measure(url, scenario, slots, rounds, spread))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["both", "sqlite", "postgres"], default="both")
    parser.add_argument("--slots", type=int, default=4, help="tasks each claim takes (a worker's free slots)")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=1000, help="accounts with one open task each (last row)")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    info = machine()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rows, passed = [], True
    for kind in kinds:
        results = run_engine(kind, args.slots, args.rounds, args.accounts)
        base = next(iter(results.values()))["median_ms"]
        for scenario, res in results.items():
            ratio = res["median_ms"] / base
            passed = passed and (ratio <= TARGET_RATIO or scenario.endswith("accounts"))
            rows.append([kind, scenario, res["took"], round(res["median_ms"], 3), round(res["p90_ms"], 3),
                         round(ratio, 2), round(res["claim_median_ms"], 3)])  # fmt: skip
    print(f"claims of {args.slots} slots, {args.rounds} rounds each; history {HISTORY} finished tasks")
    print(table(["engine", "scenario", "took", "statements median ms", "p90 ms", "vs the small queue",
                 "with commit median ms"], rows))  # fmt: skip
    return report_verdict("claim_scale", info, args, passed, rows)


if __name__ == "__main__":
    sys.exit(main())
