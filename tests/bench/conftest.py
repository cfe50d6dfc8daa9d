"""Benchmark scripts imported as modules (bench/ on the path for the test), to check what their verdicts judge."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], ModuleType]:
    """Import a bench script by name; result files go to a temporary directory, not bench/results."""
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(importlib.import_module("benchkit"), "RESULTS", tmp_path / "results")
    return importlib.import_module
