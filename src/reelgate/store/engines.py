"""Pick the database engine a ``REELGATE_DATABASE_URL`` names: ``sqlite:///path`` or ``postgresql://...``."""

from __future__ import annotations

from reelgate.store.db import Database
from reelgate.store.postgres import PostgresDatabase
from reelgate.store.sqlite import SqliteDatabase


def sqlite_path(url: str) -> str:
    return url.split("sqlite:///", 1)[1] if url.startswith("sqlite:///") else url.removeprefix("sqlite://")


def make_database(url: str, *, pool_size: int = 10) -> Database:
    """The database a ``REELGATE_DATABASE_URL`` names (``sqlite:///path`` or ``postgresql://...``), not yet open."""
    if url.startswith("sqlite:"):
        return SqliteDatabase(sqlite_path(url))
    if url.startswith(("postgresql:", "postgres:")):
        return PostgresDatabase(url.replace("postgresql+asyncpg:", "postgresql:", 1), max_size=pool_size)
    raise ValueError(f"REELGATE_DATABASE_URL must start with sqlite:/// or postgresql://, got {url.split(':')[0]!r}")
