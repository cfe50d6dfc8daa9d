"""PostgreSQL through an asyncpg pool, with the same SQL as SQLite, and writes group-committed like SQLite's."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from reelgate.errors import StoreUnavailable
from reelgate.store.background import Background
from reelgate.store.db import Params, Row, T, Work

_NAMED = re.compile(r"(?<![:\w]):([a-zA-Z_]\w*)")


def _to_positional(sql: str) -> tuple[str, list[str]]:
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAMED.sub(number, sql), names


def _compiled(cache: dict[str, tuple[str, list[str]]], sql: str) -> tuple[str, list[str]]:
    found = cache.get(sql)
    if found is None:
        found = cache[sql] = _to_positional(sql)
    return found


class _PgConn:
    def __init__(self, raw: asyncpg.Connection, cache: dict[str, tuple[str, list[str]]]) -> None:
        self.raw = raw
        self._cache = cache

    def _args(self, sql: str, params: Params | None) -> tuple[str, Sequence[Any]]:
        text, names = _compiled(self._cache, sql)
        values = params or {}
        return text, [values[n] for n in names]

    async def one(self, sql: str, params: Params | None = None) -> Row | None:
        text, args = self._args(sql, params)
        row: Row | None = await self.raw.fetchrow(text, *args)
        return row

    async def all(self, sql: str, params: Params | None = None) -> list[Row]:
        text, args = self._args(sql, params)
        return list(await self.raw.fetch(text, *args))

    async def run(self, sql: str, params: Params | None = None) -> int:
        text, args = self._args(sql, params)
        status: str = await self.raw.execute(text, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def many(self, sql: str, rows: Sequence[Params]) -> None:
        text, names = _compiled(self._cache, sql)
        await self.raw.executemany(text, [[row[n] for n in names] for row in rows])


_PG_DOWN = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)
_RETRY_ALONE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
MAX_BATCH = 128
# asyncpg prepares each statement once per connection, and PostgreSQL may then keep one generic plan for it: made
# while a table was small, that plan scans the whole table for good (measured: a task read at 3 ms and growing,
# against 0.2 ms on a new connection, after 30,000 inserts). So statements are planned with their parameters and
# the tables' current size (plan_cache_mode=force_custom_plan), and connections are renewed after this many queries
# so no plan lives long.
MAX_QUERIES_PER_CONNECTION = 100_000
# Statements committed on their own (submit batches) run on a connection of their own that keeps cached plans:
# planning the submit statement afresh each time measured 0.88x the submits per second. So that no plan outlives
# the table sizes it was made for, this connection is renewed far more often than the others' (about every 10 s
# under full load; a new connection costs a few milliseconds).
STATEMENT_CONNECTIONS = 1  # one submit batch in flight at a time (store/create_batches.py)
MAX_STATEMENTS_PER_CONNECTION = 2_000
MAX_COMMITTERS = 2  # two transactions in flight: one flushing its WAL while the next runs its statements
Pending = tuple[Work[Any], "asyncio.Future[Any]"]


@dataclass(frozen=True)
class _Ok:
    value: Any


class _ItemFailed(Exception):
    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's per-release session reset (one round trip per query): Reelgate sets no session state —
    no LISTEN, no SET, no advisory locks, no cursors. asyncpg still rolls back an unfinished transaction."""
    return None


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any]]) -> None:
    """Resolve waiting writers once their transaction is over: a value only after the commit succeeded."""
    for fut, outcome in outcomes:
        if fut.done():
            continue
        if isinstance(outcome, _Ok):
            fut.set_result(outcome.value)
        else:
            fut.set_exception(outcome)


class PostgresDatabase:
    """PostgreSQL through an asyncpg pool; each write is one transaction on one pooled connection."""

    dialect = "postgresql"

    def __init__(self, dsn: str, *, min_size: int = 2, max_size: int = 10) -> None:
        self.dsn = dsn
        self._min, self._max = min(min_size, max_size), max_size
        self._pool: asyncpg.Pool | None = None
        self._statements: asyncpg.Pool | None = None
        self._cache: dict[str, tuple[str, list[str]]] = {}
        self._queue: list[Pending] = []
        self._committers = 0
        self._background = Background()

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=self._min, max_size=self._max, command_timeout=30, reset=_keep_session,
                server_settings={"plan_cache_mode": "force_custom_plan"}, max_queries=MAX_QUERIES_PER_CONNECTION,
            )  # fmt: skip
            self._statements = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=STATEMENT_CONNECTIONS, command_timeout=30, reset=_keep_session,
                max_queries=MAX_STATEMENTS_PER_CONNECTION,
            )  # fmt: skip
        except _PG_DOWN as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc

    def _ready_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreUnavailable("the database pool is not open")
        return self._pool

    async def read(self, work: Work[T]) -> T:
        try:
            async with self._ready_pool().acquire() as raw:
                return await work(_PgConn(raw, self._cache))
        except _PG_DOWN as exc:
            raise StoreUnavailable(f"database unavailable: {exc}") from exc

    async def write(self, work: Work[T]) -> T:
        """Queue ``work`` for the next group commit and wait until it is durable (or has failed alone)."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((work, done))
        if self._committers < MAX_COMMITTERS:
            self._committers += 1
            self._background.start(self._drain())
        result: T = await done
        return result

    async def commit_statement(self, sql: str, params: Params) -> list[Row]:
        """Outside a transaction block PostgreSQL commits the statement before answering: one round trip, and no
        row lock it takes waits on this process's event loop, as it would between an explicit transaction's
        statements and its COMMIT. Runs on a connection of its own that keeps cached plans (STATEMENT_CONNECTIONS)."""
        if self._statements is None:
            raise StoreUnavailable("the database pool is not open")
        text, names = _compiled(self._cache, sql)
        try:
            async with self._statements.acquire() as raw:
                return list(await raw.fetch(text, *[params[n] for n in names]))
        except _PG_DOWN as exc:
            raise StoreUnavailable(f"database unavailable: {exc}") from exc

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._commit_batch(batch)
        finally:
            self._committers -= 1

    async def _commit_batch(self, batch: list[Pending]) -> None:
        """One transaction for the whole batch (one row lock hold, one WAL flush); a failing item is taken out
        and the rest re-run, each in a savepoint from then on; deadlocks between batches fall back to one
        transaction per item."""
        savepoints = False
        while batch:
            try:
                outcomes = await self._run(batch, savepoints)
            except _RETRY_ALONE:
                await asyncio.gather(*(self._commit_batch_alone(item) for item in batch))
                return
            except _PG_DOWN as exc:
                _settle([(fut, StoreUnavailable(f"database unavailable: {exc}")) for _, fut in batch])
                return
            except _ItemFailed as failed:
                _settle([(batch[failed.index][1], failed.error)])
                batch = batch[: failed.index] + batch[failed.index + 1 :]
                savepoints = True
                continue
            except Exception as exc:  # COMMIT itself failed: nothing of the batch happened
                _settle([(fut, exc) for _, fut in batch])
                return
            _settle(outcomes)
            return

    async def _run(self, batch: list[Pending], savepoints: bool) -> list[tuple[asyncio.Future[Any], Any]]:
        outcomes: list[tuple[asyncio.Future[Any], Any]] = []
        async with self._ready_pool().acquire() as raw, raw.transaction():
            conn = _PgConn(raw, self._cache)
            for index, (work, fut) in enumerate(batch):
                try:
                    if savepoints:
                        async with raw.transaction():
                            outcomes.append((fut, _Ok(await work(conn))))
                    else:
                        outcomes.append((fut, _Ok(await work(conn))))
                except (*_PG_DOWN, *_RETRY_ALONE):
                    raise
                except Exception as exc:  # the item's own failure (402, a guard, a constraint): not the batch's
                    if not savepoints:
                        raise _ItemFailed(index, exc) from exc
                    outcomes.append((fut, exc))
        return outcomes

    async def _commit_batch_alone(self, item: Pending) -> None:
        work, fut = item
        try:
            async with self._ready_pool().acquire() as raw, raw.transaction():
                result = await work(_PgConn(raw, self._cache))
        except _PG_DOWN as exc:
            _settle([(fut, StoreUnavailable(f"database unavailable: {exc}"))])
        except Exception as exc:
            _settle([(fut, exc)])
        else:
            _settle([(fut, _Ok(result))])

    async def ping(self) -> None:
        await self.read(lambda c: c.one("SELECT 1"))

    async def close(self) -> None:
        for pool in (self._pool, self._statements):
            if pool is not None:
                await pool.close()
