"""Task rows: create with a reservation, read, list, claim with a lease, progress, and finish exactly once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, cast

import orjson

from reelgate.domain import COMPLETED, FAILED, TaskRecord
from reelgate.errors import InsufficientQuota, RateLimited
from reelgate.ledger import CAPTURE, RELEASE
from reelgate.store.coalesce import CoalescedReads
from reelgate.store.create_batches import CreateBatches
from reelgate.store.db import Conn, Database, Row

# record() reads these by position: keep the two in the same order.
_PUBLIC_COLS = (
    "id, account_id, model, status, progress, created, cancellable, estimated_time, price, user_group, "
    "billing_rule, charged, result, error_code, error_message, callback_url"
)
_ACTIVE = "status IN ('pending', 'processing')"


@dataclass(slots=True)  # not frozen, for the reason TaskRecord is not (built once per submit, never changed)
class NewTask:
    id: str
    account_id: int
    api_key_id: int
    model: str
    provider: str
    created: int
    now: float
    deadline: float
    params: dict[str, Any]
    callback_url: str | None
    price: int
    user_group: str
    billing_rule: str
    estimated_time: int
    max_in_flight: int


@dataclass(frozen=True)
class Idempotency:
    api_key_id: int
    key: str
    body_hash: str


@dataclass(frozen=True)
class Claim:
    """A task a worker now holds the lease on."""

    id: str
    account_id: int
    model: str
    provider: str
    params: dict[str, Any]
    state: dict[str, Any]
    attempts: int
    deadline: float
    took_over: bool


@dataclass(frozen=True)
class Finish:
    """A terminal transition. ``guard`` says who may make it: the lease owner, a cancel, or the deadline sweep."""

    task_id: str
    status: Literal["completed", "failed"]
    now: float
    guard: Literal["owner", "cancel", "expired"]
    owner: str = ""
    account_id: int | None = None
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    element: dict[str, Any] | None = None
    webhook_id: str = ""


def record(row: Row) -> TaskRecord:
    """A task from a row of ``_PUBLIC_COLS``, read by position: on the hottest route, a lookup by name in
    sqlite3.Row compares every column name."""
    (task_id, account_id, model, status, progress, created, cancellable, estimated_time, price, user_group,
     billing_rule, charged, result, error_code, error_message, callback_url) = cast(tuple[Any, ...], row)  # fmt: skip
    return TaskRecord(
        id=task_id,
        account_id=int(account_id),
        model=model,
        status=status,
        progress=int(progress),
        created=int(created),
        cancellable=bool(cancellable),
        estimated_time=int(estimated_time),
        price=int(price),
        user_group=user_group,
        billing_rule=billing_rule,
        charged=None if charged is None else int(charged),
        result=None if result is None else json.loads(result),
        error_code=error_code,
        error_message=error_message,
        callback_url=callback_url,
    )


async def _get(c: Conn, task_id: str) -> TaskRecord | None:
    row = await c.one(f"SELECT {_PUBLIC_COLS} FROM tasks WHERE id = :id", {"id": task_id})
    return None if row is None else record(row)


_RESERVE = (
    "UPDATE accounts SET available = available - :p, reserved = reserved + :p, in_flight = in_flight + 1 "
    "WHERE id = :a AND available >= :p AND in_flight < :cap"
)
_TASK_COLS = (
    "id, account_id, api_key_id, model, provider, status, progress, cancellable, created, created_at, updated_at, "
    "deadline, run_after, params, callback_url, price, user_group, billing_rule, estimated_time"
)
_TASK_VALUES = (
    ":id, :a, :k, :model, :provider, 'pending', 0, 1, :created, :now, :now, :deadline, :now, :params, :cb, :p, "
    ":grp, :rule, :eta"
)
_LEDGER_COLS = "account_id, task_id, kind, amount, note, created"
_INSERT_TASK = f"INSERT INTO tasks ({_TASK_COLS}) VALUES ({_TASK_VALUES})"
_INSERT_RESERVE = f"INSERT INTO ledger ({_LEDGER_COLS}) VALUES (:a, :id, 'reserve', :p, '', :now)"
# PostgreSQL does the whole creation in one statement (one round trip inside the group commit); the task and its
# reserve entry are inserted only from the row the conditional reservation returned.
_CREATE_PG = (
    f"WITH reserved AS ({_RESERVE} RETURNING id), "
    f"made AS (INSERT INTO tasks ({_TASK_COLS}) SELECT CAST(:id AS TEXT), CAST(:a AS BIGINT), CAST(:k AS BIGINT), "
    "CAST(:model AS TEXT), CAST(:provider AS TEXT), 'pending', 0, 1, CAST(:created AS BIGINT), "
    "CAST(:now AS DOUBLE PRECISION), CAST(:now AS DOUBLE PRECISION), CAST(:deadline AS DOUBLE PRECISION), "
    "CAST(:now AS DOUBLE PRECISION), CAST(:params AS TEXT), CAST(:cb AS TEXT), CAST(:p AS BIGINT), "
    "CAST(:grp AS TEXT), CAST(:rule AS TEXT), CAST(:eta AS INTEGER) FROM reserved RETURNING id), "
    f"booked AS (INSERT INTO ledger ({_LEDGER_COLS}) SELECT CAST(:a AS BIGINT), id, 'reserve', CAST(:p AS BIGINT), "
    "'', CAST(:now AS DOUBLE PRECISION) FROM made RETURNING id) "
    "SELECT COUNT(*) AS n FROM booked"
)


# A burst of submits on PostgreSQL in one statement: one reservation per account, one insert of all tasks and one
# of all reserve entries. A submit is made if it and every earlier submit of its account in the burst fit the
# account's balance and in-flight cap, the same answer as reserving them one after another, up to the first that
# does not fit; the caller runs the rest alone. The account rows are locked first, so their values are current.
# "Fits, with every earlier one" is two bounds per submit, worked out before the statement (_prefix_bounds): the
# credits its account needs for it and every earlier one (need), and the most tasks the account may already have in
# flight (room). So the statement has no window or sort: 0.90x PostgreSQL's CPU a submit at 16 a batch.
# The burst travels as one JSON array of objects, one per submit (the values of _create_params and _prefix_bounds,
# under their names): encoding it is one orjson call, against one array per column, which asyncpg checks element by
# element (client CPU a submit 7-8 µs against 15-17 µs at 16 a batch).
_BATCH_COLUMNS = (
    ("id", "TEXT"), ("a", "BIGINT"), ("k", "BIGINT"), ("model", "TEXT"), ("provider", "TEXT"), ("created", "BIGINT"),
    ("now", "DOUBLE PRECISION"), ("deadline", "DOUBLE PRECISION"), ("params", "TEXT"), ("cb", "TEXT"),
    ("p", "BIGINT"), ("grp", "TEXT"), ("rule", "TEXT"), ("eta", "INTEGER"), ("need", "BIGINT"), ("room", "BIGINT"),
)  # fmt: skip
_CREATE_BATCH_PG = (
    "WITH req AS (SELECT * FROM json_to_recordset(CAST(:rows AS JSON)) AS r("
    + ", ".join(f"{name} {kind}" for name, kind in _BATCH_COLUMNS)
    + ")), "
    "acct AS (SELECT id, available, in_flight FROM accounts WHERE id IN (SELECT a FROM req) FOR NO KEY UPDATE), "
    "ok AS (SELECT req.* FROM req JOIN acct ON acct.id = req.a "
    "WHERE acct.available >= req.need AND acct.in_flight <= req.room), "
    "reserved AS (UPDATE accounts SET available = available - t.total, reserved = reserved + t.total, "
    "in_flight = in_flight + t.cnt FROM (SELECT a, SUM(p) AS total, COUNT(*) AS cnt FROM ok GROUP BY a) t "
    "WHERE accounts.id = t.a RETURNING accounts.id), "
    f"made AS (INSERT INTO tasks ({_TASK_COLS}) SELECT id, a, k, model, provider, 'pending', 0, 1, created, now, now, "
    "deadline, now, params, cb, p, grp, rule, eta FROM ok RETURNING id), "
    f"booked AS (INSERT INTO ledger ({_LEDGER_COLS}) SELECT a, id, 'reserve', p, '', now FROM ok) "
    "SELECT id FROM made"
)


def _create_params(t: NewTask) -> dict[str, Any]:
    return {
        "id": t.id, "a": t.account_id, "k": t.api_key_id, "model": t.model, "provider": t.provider,
        "created": t.created, "now": t.now, "deadline": t.deadline, "params": orjson.dumps(t.params).decode(),
        "cb": t.callback_url, "p": t.price, "grp": t.user_group, "rule": t.billing_rule, "eta": t.estimated_time,
        "cap": t.max_in_flight,
    }  # fmt: skip


def _prefix_bounds(tasks: list[NewTask]) -> tuple[list[int], list[int]]:
    """For each submit of a burst, in order: the least its account must have available for it and every earlier
    submit of that account to fit (need), and the most tasks the account may have in flight for all of them to fit
    their caps (room)."""
    spent: dict[int, int] = {}
    count: dict[int, int] = {}
    need: dict[int, int] = {}
    room: dict[int, int] = {}
    needs, rooms = [], []
    for t in tasks:
        a = t.account_id
        spent[a] = spent.get(a, 0) + t.price
        count[a] = count.get(a, 0) + 1
        need[a] = max(need.get(a, 0), spent[a])
        room[a] = min(room.get(a, t.max_in_flight), t.max_in_flight - count[a])
        needs.append(need[a])
        rooms.append(room[a])
    return needs, rooms


# A burst of submits on SQLite, inside the group commit: the accounts' balances are read once (this process holds
# the write lock, so they are current), the submits that fit are worked out here with the same bounds as on
# PostgreSQL, and their tasks and reserve entries are inserted by one executemany each, then one reservation per
# account. The statements of a whole burst run back to back: measured served, 60 µs of statement CPU a submit
# when each submit ran its own three between requests, against about 30 µs in a tight loop.
SQLITE_BATCHES_IN_FLIGHT = 64  # in effect no limit: each holds up to 128 submits of one event-loop turn
_BATCH_ACCOUNTS_SQLITE = "SELECT id, available, in_flight FROM accounts WHERE id IN (SELECT value FROM json_each(:ids))"
_RESERVE_TOTAL = (
    "UPDATE accounts SET available = available - :total, reserved = reserved + :total, in_flight = in_flight + :n "
    "WHERE id = :a"
)


def _fitting(tasks: list[NewTask], balances: dict[int, tuple[int, int]]) -> list[NewTask]:
    """The submits of a burst that fit their account (``balances``: available, in flight), each with every
    earlier submit of its account: what reserving them one after another would make, up to the first refusal."""
    made = []
    for t, need, room in zip(tasks, *_prefix_bounds(tasks), strict=True):
        balance = balances.get(t.account_id)
        if balance is not None and balance[0] >= need and balance[1] <= room:
            made.append(t)
    return made


def _account_totals(made: list[NewTask]) -> list[dict[str, int]]:
    totals: dict[int, dict[str, int]] = {}
    for t in made:
        total = totals.setdefault(t.account_id, {"a": t.account_id, "total": 0, "n": 0})
        total["total"] += t.price
        total["n"] += 1
    return list(totals.values())


def _batch_params(tasks: list[NewTask]) -> dict[str, str]:
    rows = [_create_params(t) for t in tasks]
    for row, need, room in zip(rows, *_prefix_bounds(tasks), strict=True):
        row["need"], row["room"] = need, room
    return {"rows": orjson.dumps(rows).decode()}


async def _refuse(c: Conn, t: NewTask) -> None:
    """Say why a reservation did not happen: the in-flight cap (429) or the balance (402)."""
    row = await c.one("SELECT available, in_flight FROM accounts WHERE id = :a", {"a": t.account_id})
    if row is not None and int(row["available"]) >= t.price:
        raise RateLimited(
            f"this account already has {row['in_flight']} tasks in flight (limit {t.max_in_flight})",
            code="too_many_tasks_in_flight",
            headers={"Retry-After": "5"},
        )
    raise InsufficientQuota(
        f"not enough credits: this call needs {t.price / 1000:g} and the account has "
        f"{(int(row['available']) if row else 0) / 1000:g} available",
        fallback_suggestion="ask the operator to grant credits (reelgate credits grant)",
    )


async def _create(c: Conn, t: NewTask, postgres: bool) -> None:
    params = _create_params(t)
    if postgres:
        row = await c.one(_CREATE_PG, params)
        if row is None or not row["n"]:
            await _refuse(c, t)
        return
    if not await c.run(_RESERVE, params):
        await _refuse(c, t)
    await c.run(_INSERT_TASK, params)
    await c.run(_INSERT_RESERVE, params)


def _fresh(t: NewTask) -> TaskRecord:
    """The task just created, as a read would return it (saves reading back what was just written)."""
    return TaskRecord(
        id=t.id, account_id=t.account_id, model=t.model, status="pending", progress=0, created=t.created,
        cancellable=True, estimated_time=t.estimated_time, price=t.price, user_group=t.user_group,
        billing_rule=t.billing_rule, charged=None, result=None, error_code=None, error_message=None,
        callback_url=t.callback_url,
    )  # fmt: skip


async def _settle(c: Conn, f: Finish, account_id: int, price: int) -> None:
    moved = (
        "reserved = reserved - :p, captured = captured + :p"
        if f.status == COMPLETED
        else "reserved = reserved - :p, available = available + :p"
    )
    await c.run(f"UPDATE accounts SET {moved}, in_flight = in_flight - 1 WHERE id = :a", {"p": price, "a": account_id})
    await c.run(
        "INSERT INTO ledger (account_id, task_id, kind, amount, note, created) VALUES (:a, :id, :kind, :p, '', :now)",
        {"a": account_id, "id": f.task_id, "kind": CAPTURE if f.status == COMPLETED else RELEASE, "p": price,
         "now": f.now},
    )  # fmt: skip


class TaskStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._postgres = db.dialect == "postgresql"
        self._lock = " FOR UPDATE SKIP LOCKED" if self._postgres else ""
        # Task reads of one loop turn share a query; plain submits that arrive together are created together.
        # PostgreSQL: one batch at a time (create_batches.py). SQLite: every batch goes straight to the group commit,
        # which joins the batches that wait for the write lock into one transaction; one at a time, a burst that
        # came while another process held the lock waited a whole commit more (SQLite x2: 0.69x the submits/s).
        create_batch = self._create_batch_pg if self._postgres else self._create_batch_sqlite
        in_flight = 1 if self._postgres else SQLITE_BATCHES_IN_FLIGHT
        self._creates: CreateBatches[NewTask, TaskRecord] = CreateBatches(create_batch, self._create_one,
                                                                          in_flight=in_flight)  # fmt: skip
        if self._postgres:
            self._reads = CoalescedReads(db, f"SELECT {_PUBLIC_COLS} FROM tasks WHERE id = ANY(:ids)", record)
        else:
            sql = f"SELECT {_PUBLIC_COLS} FROM tasks WHERE id IN (SELECT value FROM json_each(:ids))"
            self._reads = CoalescedReads(db, sql, record, bind=lambda ids: orjson.dumps(ids).decode())

    async def create(self, t: NewTask, idem: Idempotency | None) -> tuple[TaskRecord, str | None]:
        """Reserve, insert the task and its idempotency record in one transaction.

        Returns the new task and None, or, when the idempotency key was used before, the original task and
        the body hash it was first used with.
        """
        if idem is None:
            return await self._creates.create(t), None
        return await self._create_alone(t, idem)

    async def _create_batch_sqlite(self, tasks: list[NewTask]) -> list[TaskRecord | Exception | None]:

        async def work(c: Conn) -> set[str]:
            ids = orjson.dumps(sorted({t.account_id for t in tasks})).decode()
            rows = await c.all(_BATCH_ACCOUNTS_SQLITE, {"ids": ids})
            made = _fitting(tasks, {int(r["id"]): (int(r["available"]), int(r["in_flight"])) for r in rows})
            params = [_create_params(t) for t in made]
            await c.many(_INSERT_TASK, params)
            await c.many(_INSERT_RESERVE, params)
            await c.many(_RESERVE_TOTAL, _account_totals(made))
            return {t.id for t in made}

        made = await self.db.write(work)
        # Not made (None): CreateBatches runs those alone, in order, and each learns why (402 or 429).
        return [_fresh(t) if t.id in made else None for t in tasks]

    async def _create_batch_pg(self, tasks: list[NewTask]) -> list[TaskRecord | Exception | None]:
        made = {row["id"] for row in await self.db.commit_statement(_CREATE_BATCH_PG, _batch_params(tasks))}
        # Not made (None): refused by its account, or after an earlier submit of it that was. CreateBatches runs
        # those alone, in order: each is made or refused as if the burst had come one by one (402 or 429).
        return [_fresh(t) if t.id in made else None for t in tasks]

    async def _create_alone(self, t: NewTask, idem: Idempotency | None = None) -> tuple[TaskRecord, str | None]:

        async def work(c: Conn) -> tuple[TaskRecord, str | None]:
            if idem is not None:
                fresh = await c.run(
                    "INSERT INTO idempotency (api_key_id, key, body_hash, task_id, created) "
                    "VALUES (:k, :key, :h, :id, :now) ON CONFLICT (api_key_id, key) DO NOTHING",
                    {"k": idem.api_key_id, "key": idem.key, "h": idem.body_hash, "id": t.id, "now": t.now},
                )
                if not fresh:
                    row = await c.one(
                        "SELECT body_hash, task_id FROM idempotency WHERE api_key_id = :k AND key = :key",
                        {"k": idem.api_key_id, "key": idem.key},
                    )
                    assert row is not None
                    original = await _get(c, row["task_id"])
                    assert original is not None
                    return original, str(row["body_hash"])
            await _create(c, t, self._postgres)
            return _fresh(t), None

        return await self.db.write(work)

    async def _create_one(self, t: NewTask) -> TaskRecord:
        return (await self._create_alone(t))[0]

    async def get(self, task_id: str, account_id: int | None = None) -> TaskRecord | None:
        rec = cast(TaskRecord | None, await self._reads.get(task_id))
        if rec is None or (account_id is not None and rec.account_id != account_id):
            return None
        return rec

    async def list_for_account(
        self, account_id: int, *, status: str, model: str, after: str, limit: int
    ) -> list[TaskRecord]:
        async def work(c: Conn) -> list[TaskRecord]:
            cursor = await c.one(
                "SELECT created_at FROM tasks WHERE id = :id AND account_id = :a",
                {"id": after, "a": account_id},
            )
            rows = await c.all(
                f"SELECT {_PUBLIC_COLS} FROM tasks WHERE account_id = :a AND (:st = '' OR status = :st) "
                "AND (:m = '' OR model = :m) AND (created_at < :ca OR (created_at = :ca AND id < :cid) OR :ca < 0) "
                "ORDER BY created_at DESC, id DESC LIMIT :n",
                {"a": account_id, "st": status, "m": model, "n": limit, "cid": after,
                 "ca": float(cursor["created_at"]) if cursor else -1.0},
            )  # fmt: skip
            return [record(r) for r in rows]

        return await self.db.read(work)

    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Claim]:
        async def work(c: Conn) -> list[Claim]:
            rows = await c.all(
                f"SELECT id, lease_owner, lease_expires FROM tasks WHERE {_ACTIVE} AND run_after <= :now "
                f"AND (lease_expires IS NULL OR lease_expires < :now) ORDER BY run_after LIMIT :n{self._lock}",
                {"now": now, "n": limit},
            )
            claims = []
            for cand in rows:
                row = await c.one(
                    "UPDATE tasks SET status = 'processing', lease_owner = :me, lease_expires = :exp, "
                    "attempts = attempts + 1, updated_at = :now WHERE id = :id AND "
                    f"{_ACTIVE} RETURNING id, account_id, model, provider, params, state, attempts, deadline",
                    {"me": owner, "exp": now + lease, "now": now, "id": cand["id"]},
                )
                if row is not None and cand["lease_owner"] is not None:
                    # Only takeovers are recorded: a claim of a free task is the normal case (one per poll).
                    await c.run(
                        "INSERT INTO task_claims (task_id, owner, claimed_at, previous_owner, previous_lease_expires) "
                        "VALUES (:id, :me, :now, :prev, :prev_exp)",
                        {"id": cand["id"], "me": owner, "now": now, "prev": cand["lease_owner"],
                         "prev_exp": cand["lease_expires"]},
                    )  # fmt: skip
                if row is not None:
                    claims.append(
                        Claim(row["id"], int(row["account_id"]), row["model"], row["provider"],
                              json.loads(row["params"]), json.loads(row["state"]), int(row["attempts"]),
                              float(row["deadline"]), cand["lease_owner"] is not None)
                    )  # fmt: skip
            return claims

        return await self.db.write(work)

    async def heartbeat(self, task_id: str, owner: str, expires: float) -> bool:
        sql = f"UPDATE tasks SET lease_expires = :exp WHERE id = :id AND lease_owner = :me AND {_ACTIVE}"
        return bool(await self.db.write(lambda c: c.run(sql, {"exp": expires, "id": task_id, "me": owner})))

    async def progress(self, task_id: str, owner: str, percent: int, now: float) -> bool:
        sql = (
            "UPDATE tasks SET progress = CASE WHEN progress < :p THEN :p ELSE progress END, updated_at = :now "
            "WHERE id = :id AND lease_owner = :me AND status = 'processing'"
        )
        params = {"p": percent, "now": now, "id": task_id, "me": owner}
        return bool(await self.db.write(lambda c: c.run(sql, params)))

    async def save_state(self, task_id: str, owner: str, state: dict[str, Any], cancellable: bool | None) -> bool:
        sql = (
            "UPDATE tasks SET state = :s, cancellable = COALESCE(:c, cancellable) "
            "WHERE id = :id AND lease_owner = :me AND status = 'processing'"
        )
        c_val = None if cancellable is None else int(cancellable)
        params = {"s": json.dumps(state), "c": c_val, "id": task_id, "me": owner}
        return bool(await self.db.write(lambda c: c.run(sql, params)))

    async def reschedule(self, task_id: str, owner: str, run_after: float, state: dict[str, Any]) -> bool:
        sql = (
            "UPDATE tasks SET lease_owner = NULL, lease_expires = NULL, run_after = :t, state = :s "
            "WHERE id = :id AND lease_owner = :me AND status = 'processing'"
        )
        params = {"t": run_after, "s": json.dumps(state), "id": task_id, "me": owner}
        return bool(await self.db.write(lambda c: c.run(sql, params)))

    async def is_held(self, task_id: str, owner: str) -> bool:
        sql = f"SELECT 1 FROM tasks WHERE id = :id AND lease_owner = :me AND {_ACTIVE}"
        return await self.db.read(lambda c: c.one(sql, {"id": task_id, "me": owner})) is not None

    async def finish(self, f: Finish) -> TaskRecord | None:
        """The one terminal transition: status, settlement, element and delivery row commit together.

        Returns the terminal task, or None when the guard did not hold (someone else finished it first).
        """
        return await self.db.write(lambda c: finish_in(c, f))

    async def overdue(self, now: float, limit: int = 100) -> list[str]:
        rows = await self.db.read(
            lambda c: c.all(
                f"SELECT id FROM tasks WHERE {_ACTIVE} AND deadline < :now "
                "AND (lease_expires IS NULL OR lease_expires < :now) ORDER BY deadline LIMIT :n",
                {"now": now, "n": limit},
            )
        )
        return [r["id"] for r in rows]

    async def recent_durations(self, model: str, limit: int = 200) -> list[float]:
        rows = await self.db.read(
            lambda c: c.all(
                "SELECT finished_at - created_at AS d FROM tasks WHERE model = :m AND status = 'completed' "
                "AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT :n",
                {"m": model, "n": limit},
            )
        )
        return [float(r["d"]) for r in rows]

    async def queue_stats(self, now: float) -> tuple[int, float]:
        row = await self.db.read(
            lambda c: c.one(
                f"SELECT COUNT(*) AS n, MIN(run_after) AS oldest FROM tasks WHERE {_ACTIVE} AND run_after <= :now "
                "AND (lease_expires IS NULL OR lease_expires < :now)",
                {"now": now},
            )
        )
        if row is None or not row["n"]:
            return 0, 0.0
        return int(row["n"]), max(0.0, now - float(row["oldest"]))

    async def next_due(self) -> float | None:
        row = await self.db.read(
            lambda c: c.one(f"SELECT MIN(COALESCE(lease_expires, run_after)) AS t FROM tasks WHERE {_ACTIVE}")
        )
        return None if row is None or row["t"] is None else float(row["t"])


def _guard_sql(f: Finish) -> tuple[str, dict[str, Any]]:
    if f.guard == "owner":
        return "lease_owner = :owner", {"owner": f.owner}
    if f.guard == "cancel":
        return "cancellable = 1 AND account_id = :acct", {"acct": f.account_id}
    return "deadline < :now AND (lease_expires IS NULL OR lease_expires < :now)", {}


async def finish_in(c: Conn, f: Finish) -> TaskRecord | None:
    guard, extra = _guard_sql(f)
    row = await c.one(
        "UPDATE tasks SET status = :st, progress = CASE WHEN :st = 'completed' THEN 100 ELSE progress END, "
        "finished_at = :now, updated_at = :now, lease_owner = NULL, lease_expires = NULL, cancellable = 0, "
        "charged = CASE WHEN :st = 'completed' THEN price ELSE 0 END, result = :res, error_code = :ec, "
        f"error_message = :em WHERE id = :id AND {_ACTIVE} AND {guard} RETURNING account_id, price, callback_url",
        {"st": f.status, "now": f.now, "res": None if f.result is None else json.dumps(f.result),
         "ec": f.error_code if f.status == FAILED else None, "em": f.error_message if f.status == FAILED else None,
         "id": f.task_id, **extra},
    )  # fmt: skip
    if row is None:
        return None
    account_id, price = int(row["account_id"]), int(row["price"])
    await _settle(c, f, account_id, price)
    if f.element is not None:
        await c.run(
            "INSERT INTO elements (id, account_id, task_id, provider, upstream_id, data, created, created_at) "
            "VALUES (:id, :a, :t, :p, :u, :d, :c, :now)",
            {"id": f.element["element_id"], "a": account_id, "t": f.task_id, "p": f.element["provider"],
             "u": f.element.get("upstream_id"), "d": json.dumps(f.result), "c": int(f.now), "now": f.now},
        )  # fmt: skip
    if row["callback_url"]:
        await c.run(
            "INSERT INTO deliveries (id, task_id, account_id, url, status, attempts, next_attempt, created) "
            "VALUES (:id, :t, :a, :u, 'pending', 0, :now, :now)",
            {"id": f.webhook_id, "t": f.task_id, "a": account_id, "u": row["callback_url"], "now": f.now},
        )
    return await _get(c, f.task_id)
