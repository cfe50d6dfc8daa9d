"""Element rows: the subject elements tasks created, scoped to their account."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reelgate.store.db import Conn, Database, Row


@dataclass(frozen=True)
class ElementRecord:
    id: str
    account_id: int
    task_id: str
    provider: str
    upstream_id: str | None
    data: dict[str, Any]
    created: int

    def public(self) -> dict[str, Any]:
        return {
            "object": "element",
            "id": self.id,
            "task_id": self.task_id,
            "created": self.created,
            **self.data,
        }


def _element(row: Row) -> ElementRecord:
    return ElementRecord(
        id=row["id"],
        account_id=int(row["account_id"]),
        task_id=row["task_id"],
        provider=row["provider"],
        upstream_id=row["upstream_id"],
        data=json.loads(row["data"]),
        created=int(row["created"]),
    )


_COLS = "id, account_id, task_id, provider, upstream_id, data, created"


class ElementStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, element_id: str, account_id: int) -> ElementRecord | None:
        row = await self.db.read(
            lambda c: c.one(
                f"SELECT {_COLS} FROM elements WHERE id = :id AND account_id = :a AND deleted_at IS NULL",
                {"id": element_id, "a": account_id},
            )
        )
        return None if row is None else _element(row)

    async def get_many(self, element_ids: list[str], account_id: int) -> list[ElementRecord]:
        """The account's live elements among ``element_ids``, in one read (unknown, foreign or deleted: absent)."""
        wanted = list(dict.fromkeys(element_ids))
        if not wanted:
            return []
        names = {f"e{i}": element_id for i, element_id in enumerate(wanted)}
        marks = ", ".join(f":{name}" for name in names)
        sql = f"SELECT {_COLS} FROM elements WHERE account_id = :a AND deleted_at IS NULL AND id IN ({marks})"
        rows = await self.db.read(lambda c: c.all(sql, {"a": account_id, **names}))
        return [_element(r) for r in rows]

    async def list_for_account(self, account_id: int, *, after: str, limit: int) -> list[ElementRecord]:
        async def work(c: Conn) -> list[ElementRecord]:
            cursor = await c.one(
                "SELECT created_at FROM elements WHERE id = :id AND account_id = :a", {"id": after, "a": account_id}
            )
            rows = await c.all(
                f"SELECT {_COLS} FROM elements WHERE account_id = :a AND deleted_at IS NULL "
                "AND (created_at < :ca OR (created_at = :ca AND id < :cid) OR :ca < 0) "
                "ORDER BY created_at DESC, id DESC LIMIT :n",
                {"a": account_id, "ca": float(cursor["created_at"]) if cursor else -1.0, "cid": after, "n": limit},
            )
            return [_element(r) for r in rows]

        return await self.db.read(work)

    async def mark_deleted(self, element_id: str, account_id: int, now: float) -> ElementRecord | None:
        """Hide the element from its account; returns it (for the upstream delete) or None if unknown."""

        async def work(c: Conn) -> ElementRecord | None:
            row = await c.one(
                f"UPDATE elements SET deleted_at = :now WHERE id = :id AND account_id = :a AND deleted_at IS NULL "
                f"RETURNING {_COLS}",
                {"now": now, "id": element_id, "a": account_id},
            )
            return None if row is None else _element(row)

        return await self.db.write(work)

    async def mark_upstream_deleted(self, element_id: str) -> None:
        sql = "UPDATE elements SET upstream_deleted = 1 WHERE id = :id"
        await self.db.write(lambda c: c.run(sql, {"id": element_id}))
