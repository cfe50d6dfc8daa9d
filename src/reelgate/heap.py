"""Garbage-collector settings for long-running processes: what start-up built is kept out of every collection."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Move every object alive now (imports, the app, caches, the catalogue) to the permanent generation.

    They live as long as the process, yet each full collection would walk them all: with the imported libraries
    that is hundreds of thousands of objects, a pause of tens of milliseconds in the middle of requests.
    Called once start-up is over; objects made later are collected as usual.
    """
    gc.collect()
    gc.freeze()
