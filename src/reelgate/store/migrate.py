"""Apply the Alembic history to a database named by its URL (the same history for SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from reelgate.store.engines import sqlite_path


def alembic_url(url: str) -> str:
    if url.startswith("sqlite:"):
        path = Path(sqlite_path(url))
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    scheme, rest = url.split("://", 1)
    return f"postgresql+asyncpg://{rest}" if scheme in ("postgresql", "postgres") else url


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", alembic_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> list[str]:
    """Bring the schema up to ``revision``; safe to call on every start (no-op when current). The revisions it
    applied, oldest first (empty when the schema was current)."""
    config = alembic_config(url)
    applied: list[str] = []
    config.attributes["applied"] = applied
    command.upgrade(config, revision)
    return applied


def head_revision() -> str:
    """The newest revision of the history this code carries."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or "base"
