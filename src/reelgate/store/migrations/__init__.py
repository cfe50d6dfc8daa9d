"""Alembic migration environment for both SQLite and PostgreSQL, one history."""
