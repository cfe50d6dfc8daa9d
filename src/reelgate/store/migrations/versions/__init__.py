"""Numbered migrations; each applies to SQLite and PostgreSQL alike."""
