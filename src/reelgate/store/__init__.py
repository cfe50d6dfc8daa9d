"""Persistence: every SQL statement lives in this package, behind the intent-named methods of ``Store``."""
