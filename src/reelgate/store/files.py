"""File API rows: who uploaded each file, what it is called, when it expires; the quota's count and the sweep.

A row is reserved (``ready`` 0) before its object is written, in a transaction that counts the account's live files,
so the quota holds across every API process; while unready its ``expires_at`` is only a grace period away, so a row
whose upload died with its process expires soon and is swept like any expired file. Once its object is whole it
turns ready with the expiry its name carries (media/hosted.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from reelgate.store.db import Conn, Database, Row

_COLS = "id, account_id, name, file_name, original_name, upload_path, mime_type, size, created, expires_at"
_LIVE = "account_id = :a AND expires_at > :now"


@dataclass(frozen=True)
class FileRecord:
    id: str
    account_id: int
    name: str  # the stored object, and the last part of its URL
    file_name: str
    original_name: str
    upload_path: str
    mime_type: str
    size: int
    created: float
    expires_at: float


def _record(row: Row) -> FileRecord:
    return FileRecord(
        id=str(row["id"]), account_id=int(row["account_id"]), name=str(row["name"]), file_name=str(row["file_name"]),
        original_name=str(row["original_name"]), upload_path=str(row["upload_path"]), mime_type=str(row["mime_type"]),
        size=int(row["size"]), created=float(row["created"]), expires_at=float(row["expires_at"]),
    )  # fmt: skip


def _params(record: FileRecord) -> dict[str, object]:
    return {"id": record.id, "a": record.account_id, "name": record.name, "fn": record.file_name,
            "on": record.original_name, "up": record.upload_path, "mt": record.mime_type, "size": record.size,
            "created": record.created, "exp": record.expires_at}  # fmt: skip


@dataclass(frozen=True)
class Quota:
    """An account's live files (ready or being written) and, when there are any, when the first of them expires."""

    used: int
    next_expiry: float | None


class FileStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def quota(self, account_id: int, now: float) -> Quota:
        row = await self.db.read(lambda c: c.one(f"SELECT count(*) AS n, min(expires_at) AS first FROM files "
                                                 f"WHERE {_LIVE}", {"a": account_id, "now": now}))  # fmt: skip
        first = None if row is None or row["first"] is None else float(row["first"])
        return Quota(int(row["n"]) if row else 0, first)

    async def reserve(self, record: FileRecord, *, quota: int, now: float, grace: float) -> bool:
        """Insert ``record`` unready (expiring ``grace`` seconds from ``now`` until it is ready) if the account has
        fewer than ``quota`` live files; False, and nothing written, when it has that many."""
        pending = replace(record, expires_at=now + grace)
        lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""

        async def work(c: Conn) -> bool:
            # The account row's lock serialises one account's reservations across processes (SQLite serialises
            # every write anyway), so two uploads cannot both take the last place.
            await c.one(f"SELECT id FROM accounts WHERE id = :a{lock}", {"a": record.account_id})
            used = await c.one(f"SELECT count(*) AS n FROM files WHERE {_LIVE}", {"a": record.account_id, "now": now})
            if used is not None and int(used["n"]) >= quota:
                return False
            await c.run(f"INSERT INTO files ({_COLS}, ready) VALUES (:id, :a, :name, :fn, :on, :up, :mt, :size, "
                        ":created, :exp, 0)", _params(pending))  # fmt: skip
            return True

        return await self.db.write(work)

    async def mark_ready(self, record: FileRecord) -> bool:
        """The object is whole: the row takes its final names, size and expiry; False when the row is gone (swept)."""
        sql = ("UPDATE files SET file_name = :fn, original_name = :on, upload_path = :up, mime_type = :mt, "
               "size = :size, expires_at = :exp, ready = 1 "
               "WHERE id = :id AND account_id = :a AND ready = 0")  # fmt: skip
        return bool(await self.db.write(lambda c: c.run(sql, _params(record))))

    async def page(self, account_id: int, now: float, *, offset: int, limit: int) -> tuple[list[FileRecord], int]:
        """One page of the account's ready, unexpired files, newest first, and how many there are in all."""

        async def work(c: Conn) -> tuple[list[FileRecord], int]:
            params = {"a": account_id, "now": now, "n": limit, "o": offset}
            total = await c.one(f"SELECT count(*) AS n FROM files WHERE {_LIVE} AND ready = 1", params)
            rows = await c.all(f"SELECT {_COLS} FROM files WHERE {_LIVE} AND ready = 1 "
                               "ORDER BY created DESC, id DESC LIMIT :n OFFSET :o", params)  # fmt: skip
            return [_record(r) for r in rows], int(total["n"]) if total else 0

        return await self.db.read(work)

    async def get(self, file_id: str, account_id: int, now: float) -> FileRecord | None:
        """The account's ready, unexpired file by id (another account's answers None, as an unknown id does)."""
        sql = f"SELECT {_COLS} FROM files WHERE id = :id AND {_LIVE} AND ready = 1"
        row = await self.db.read(lambda c: c.one(sql, {"id": file_id, "a": account_id, "now": now}))
        return None if row is None else _record(row)

    async def by_name(self, name: str, now: float) -> FileRecord | None:
        """The ready, unexpired file stored under ``name`` (what its URL serves), whoever owns it."""
        sql = f"SELECT {_COLS} FROM files WHERE name = :name AND expires_at > :now AND ready = 1"
        row = await self.db.read(lambda c: c.one(sql, {"name": name, "now": now}))
        return None if row is None else _record(row)

    async def remove(self, file_id: str, account_id: int | None = None) -> bool:
        """Delete a row (of ``account_id`` when given); False when there was none."""
        if account_id is None:
            return bool(await self.db.write(lambda c: c.run("DELETE FROM files WHERE id = :id", {"id": file_id})))
        sql = "DELETE FROM files WHERE id = :id AND account_id = :a"
        return bool(await self.db.write(lambda c: c.run(sql, {"id": file_id, "a": account_id})))

    async def forget(self, file_ids: list[str]) -> None:
        if file_ids:
            await self.db.write(lambda c: c.many("DELETE FROM files WHERE id = :id", [{"id": i} for i in file_ids]))

    async def expired(self, now: float, limit: int = 500) -> list[FileRecord]:
        """Rows past their expiry (and unready rows past their grace), oldest expiry first."""
        sql = f"SELECT {_COLS} FROM files WHERE expires_at <= :now ORDER BY expires_at LIMIT :n"
        rows = await self.db.read(lambda c: c.all(sql, {"now": now, "n": limit}))
        return [_record(r) for r in rows]
