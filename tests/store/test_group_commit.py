"""Group commit on both engines: writes that share a transaction succeed or fail each on its own account; a
statement committed alone commits all its rows or none."""

from __future__ import annotations

import asyncio

import pytest

from reelgate.errors import InsufficientQuota
from reelgate.store.db import Conn, Work
from reelgate.store.sql import Store

from .factories import account


class Refused(Exception):
    """A work's own failure, as a guard or a refused reservation raises it."""


def grant(acct: int, amount: int, note: str) -> Work[int]:
    async def work(c: Conn) -> int:
        await c.run("UPDATE accounts SET available = available + :n WHERE id = :a", {"n": amount, "a": acct})
        await c.run(
            "INSERT INTO ledger (account_id, task_id, kind, amount, note, created) "
            "VALUES (:a, NULL, 'grant', :n, :note, 0)",
            {"a": acct, "n": amount, "note": note},
        )
        return amount

    return work


def refuse_before_writing() -> Work[None]:
    async def work(c: Conn) -> None:
        await c.one("SELECT 1 AS one")
        raise InsufficientQuota("refused before any change")

    return work


def refuse_after_writing(acct: int) -> Work[None]:
    async def work(c: Conn) -> None:
        await c.run("UPDATE accounts SET available = available + 1000000 WHERE id = :a", {"a": acct})
        raise Refused("refused after a change")

    return work


async def _notes(store: Store, acct: int) -> list[str]:
    rows = await store.db.read(
        lambda c: c.all("SELECT note FROM ledger WHERE account_id = :a ORDER BY note", {"a": acct})
    )
    return [str(r["note"]) for r in rows]


async def _available(store: Store, acct: int) -> int:
    row = await store.db.read(lambda c: c.one("SELECT available FROM accounts WHERE id = :a", {"a": acct}))
    assert row is not None
    return int(row["available"])


async def test_many_concurrent_writes_all_commit(store: Store) -> None:
    acct = await account(store, credits=0)
    results = await asyncio.gather(*(store.db.write(grant(acct, 1, f"g{i:03}")) for i in range(200)))
    assert results == [1] * 200
    assert await _available(store, acct) == 200
    assert len(await _notes(store, acct)) == 200


async def test_a_write_refused_before_changing_anything_fails_alone(store: Store) -> None:
    acct = await account(store, credits=0)
    works: list[Work[int] | Work[None]] = [grant(acct, 10, "a"), refuse_before_writing(), grant(acct, 20, "b")]
    results = await asyncio.gather(*(store.db.write(w) for w in works), return_exceptions=True)
    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], InsufficientQuota)
    assert await _available(store, acct) == 30
    assert await _notes(store, acct) == ["a", "b"]


async def test_a_write_failing_after_a_change_is_undone_and_the_others_still_commit(store: Store) -> None:
    acct = await account(store, credits=0)
    works: list[Work[int] | Work[None]] = [
        grant(acct, 10, "a"),
        grant(acct, 20, "b"),
        refuse_after_writing(acct),
        grant(acct, 40, "c"),
    ]
    results = await asyncio.gather(*(store.db.write(w) for w in works), return_exceptions=True)
    assert results[0] == 10 and results[1] == 20 and results[3] == 40
    assert isinstance(results[2], Refused)
    # The failed write's change is gone; each other write happened exactly once.
    assert await _available(store, acct) == 70
    assert await _notes(store, acct) == ["a", "b", "c"]


async def test_repeated_failures_amid_a_stream_of_writes_lose_nothing(store: Store) -> None:
    acct = await account(store, credits=0)
    works: list[Work[int] | Work[None]] = [
        refuse_after_writing(acct) if i % 7 == 3 else grant(acct, 1, f"g{i:03}") for i in range(140)
    ]
    results = await asyncio.gather(*(store.db.write(w) for w in works), return_exceptions=True)
    failed = [r for r in results if isinstance(r, Refused)]
    assert len(failed) == 20 and results.count(1) == 120
    assert await _available(store, acct) == 120
    assert len(await _notes(store, acct)) == 120


async def test_the_store_keeps_working_after_failures(store: Store) -> None:
    rounds = 3
    acct = await account(store, credits=0)
    for _ in range(rounds):
        with pytest.raises(Refused):
            await store.db.write(refuse_after_writing(acct))
        assert await store.db.write(grant(acct, 5, "x")) == 5
    assert await _available(store, acct) == 5 * rounds


_GRANTS = (
    "INSERT INTO ledger (account_id, task_id, kind, amount, note, created) "
    "SELECT :a, t, 'grant', 1, 'stmt', 0 FROM (SELECT 'x' AS t UNION ALL SELECT :second) s RETURNING task_id"
)


async def test_a_statement_committed_alone_answers_its_rows(store: Store) -> None:
    acct = await account(store, credits=0)
    rows = await store.db.commit_statement(_GRANTS, {"a": acct, "second": "y"})
    assert sorted(r["task_id"] for r in rows) == ["x", "y"]
    assert await _notes(store, acct) == ["stmt", "stmt"]


async def test_a_statement_committed_alone_that_fails_changes_nothing(store: Store) -> None:
    acct = await account(store, credits=0)
    # Its second row repeats the first's (task_id, kind), which the ledger allows once.
    with pytest.raises(Exception, match="ledger_once_per_task|UNIQUE"):
        await store.db.commit_statement(_GRANTS, {"a": acct, "second": "x"})
    assert await _notes(store, acct) == []


def grant_many(acct: int, notes: list[str]) -> Work[None]:
    async def work(c: Conn) -> None:
        rows = [{"a": acct, "note": note} for note in notes]
        await c.many(
            "INSERT INTO ledger (account_id, task_id, kind, amount, note, created) "
            "VALUES (:a, NULL, 'grant', 1, :note, 0)",
            rows,
        )
        await c.many("UPDATE accounts SET available = available + 1 WHERE id = :a", rows)

    return work


async def test_a_statement_run_once_per_row_writes_every_row(store: Store) -> None:
    acct = await account(store, credits=0)
    await store.db.write(grant_many(acct, ["m1", "m2", "m3"]))
    await store.db.write(grant_many(acct, []))  # no rows: nothing to run
    assert await _notes(store, acct) == ["m1", "m2", "m3"]
    assert await _available(store, acct) == 3


async def test_a_write_whose_many_fails_midway_is_undone_whole(store: Store) -> None:
    acct = await account(store, credits=0)
    bad = grant_many(acct, ["ok"])

    async def clash(c: Conn) -> None:
        await bad(c)  # committed rows of this work...
        await c.many(  # ...then a second row that breaks the ledger's once-per-(task, kind) rule
            "INSERT INTO ledger (account_id, task_id, kind, amount, note, created) VALUES (:a, 'x', 'grant', 1, :n, 0)",
            [{"a": acct, "n": "x1"}, {"a": acct, "n": "x2"}],
        )

    results = await asyncio.gather(store.db.write(grant(acct, 5, "before")), store.db.write(clash),
                                   return_exceptions=True)  # fmt: skip
    assert results[0] == 5 and isinstance(results[1], Exception)
    assert await _notes(store, acct) == ["before"]
    assert await _available(store, acct) == 5
