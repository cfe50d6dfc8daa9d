"""Serving GC settings: start-up objects frozen, young objects collected in larger, rarer passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reelgate.heap import OLDER_RATIO, YOUNG_THRESHOLD, freeze_startup_objects


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_start_up_objects_leave_collections_and_young_passes_get_rarer(restored_gc: None) -> None:
    survivor = [object() for _ in range(10)]
    freeze_startup_objects()
    assert gc.get_freeze_count() > len(survivor)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, OLDER_RATIO, OLDER_RATIO)
    assert YOUNG_THRESHOLD > 700  # Python's default, which collected every few requests under load
