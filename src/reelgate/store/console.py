"""The web console's own rows: operators (admins), their sign-in sessions, and the audit log of what they did."""

from __future__ import annotations

import time
from dataclasses import dataclass

from reelgate.store.db import Conn, Database, Row


@dataclass(frozen=True)
class AdminRecord:
    id: int
    username: str
    password_hash: str
    created: float
    disabled_at: float | None
    last_sign_in: float | None


@dataclass(frozen=True)
class SessionRecord:
    """A live session and its operator: ``csrf`` is the token every form of the session carries."""

    admin_id: int
    username: str
    csrf: str
    expires: float


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    target: str
    detail: str
    ip: str


def _admin(row: Row) -> AdminRecord:
    return AdminRecord(int(row["id"]), str(row["username"]), str(row["password_hash"]), float(row["created"]),
                       row["disabled_at"], row["last_sign_in"])  # fmt: skip


_ADMIN_COLS = "id, username, password_hash, created, disabled_at, last_sign_in"


class ConsoleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- admins -------------------------------------------------------------------------------------------------

    async def create_admin(self, username: str, password_hash: str) -> int | None:
        """A new operator; None when the username is taken."""

        async def work(c: Conn) -> int | None:
            if await c.one("SELECT id FROM console_admins WHERE username = :u", {"u": username}) is not None:
                return None
            row = await c.one(
                "INSERT INTO console_admins (username, password_hash, created) VALUES (:u, :h, :now) RETURNING id",
                {"u": username, "h": password_hash, "now": time.time()},
            )
            assert row is not None
            return int(row["id"])

        return await self.db.write(work)

    async def admin(self, username: str) -> AdminRecord | None:
        sql = f"SELECT {_ADMIN_COLS} FROM console_admins WHERE username = :u"
        row = await self.db.read(lambda c: c.one(sql, {"u": username}))
        return None if row is None else _admin(row)

    async def admins(self) -> list[AdminRecord]:
        rows = await self.db.read(lambda c: c.all(f"SELECT {_ADMIN_COLS} FROM console_admins ORDER BY id"))
        return [_admin(r) for r in rows]

    async def disable_admin(self, username: str, now: float) -> bool:
        """Disable the operator and end every session of theirs, in one transaction; False if unknown or already."""

        async def work(c: Conn) -> bool:
            row = await c.one(
                "UPDATE console_admins SET disabled_at = :now WHERE username = :u AND disabled_at IS NULL RETURNING id",
                {"u": username, "now": now},
            )
            if row is None:
                return False
            await c.run("DELETE FROM console_sessions WHERE admin_id = :a", {"a": row["id"]})
            return True

        return await self.db.write(work)

    async def rehash(self, admin_id: int, password_hash: str) -> None:
        sql = "UPDATE console_admins SET password_hash = :h WHERE id = :a"
        await self.db.write(lambda c: c.run(sql, {"h": password_hash, "a": admin_id}))

    # --- sessions -----------------------------------------------------------------------------------------------

    async def start_session(self, admin_id: int, token_hash: str, csrf: str, expires: float, ip: str) -> None:
        """Record a session and the sign-in; sessions long expired are dropped on the way (no sweeper needed)."""
        now = time.time()

        async def work(c: Conn) -> None:
            await c.run("DELETE FROM console_sessions WHERE expires < :now", {"now": now})
            await c.run(
                "INSERT INTO console_sessions (token_hash, admin_id, csrf, created, expires, ip) "
                "VALUES (:t, :a, :csrf, :now, :exp, :ip)",
                {"t": token_hash, "a": admin_id, "csrf": csrf, "now": now, "exp": expires, "ip": ip},
            )
            await c.run("UPDATE console_admins SET last_sign_in = :now WHERE id = :a", {"now": now, "a": admin_id})

        await self.db.write(work)

    async def session(self, token_hash: str, now: float) -> SessionRecord | None:
        """The live session with this token hash, of an operator not disabled; None otherwise."""
        sql = (
            "SELECT s.admin_id, a.username, s.csrf, s.expires FROM console_sessions s "
            "JOIN console_admins a ON a.id = s.admin_id "
            "WHERE s.token_hash = :t AND s.expires > :now AND a.disabled_at IS NULL"
        )
        row = await self.db.read(lambda c: c.one(sql, {"t": token_hash, "now": now}))
        if row is None:
            return None
        return SessionRecord(int(row["admin_id"]), str(row["username"]), str(row["csrf"]), float(row["expires"]))

    async def end_session(self, token_hash: str) -> None:
        sql = "DELETE FROM console_sessions WHERE token_hash = :t"
        await self.db.write(lambda c: c.run(sql, {"t": token_hash}))

    # --- audit --------------------------------------------------------------------------------------------------

    async def audit(self, actor: str, action: str, target: str, detail: str, ip: str) -> None:
        sql = (
            "INSERT INTO console_audit (at, actor, action, target, detail, ip) "
            "VALUES (:at, :actor, :action, :target, :detail, :ip)"
        )
        params = {"at": time.time(), "actor": actor, "action": action, "target": target, "detail": detail, "ip": ip}
        await self.db.write(lambda c: c.run(sql, params))

    async def audit_log(self, *, target: str = "", before: int = 0, limit: int = 50) -> list[AuditEntry]:
        """Entries newest first, before entry id ``before`` (0: from the newest), about ``target`` if given."""
        where, params = [], {"n": limit, "b": before, "t": target}
        if target:
            where.append("target = :t")
        if before:
            where.append("id < :b")
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        sql = f"SELECT id, at, actor, action, target, detail, ip FROM console_audit {clause}ORDER BY id DESC LIMIT :n"
        rows = await self.db.read(lambda c: c.all(sql, params))
        return [AuditEntry(int(r["id"]), float(r["at"]), str(r["actor"]), str(r["action"]), str(r["target"]),
                           str(r["detail"]), str(r["ip"])) for r in rows]  # fmt: skip
