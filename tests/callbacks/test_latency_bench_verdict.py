"""bench/callback_latency.py passes only when every task it submitted completed and was called back in time."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("callback_latency")


def _run(bench: ModuleType, status: dict[str, str], arrived: dict[str, float]) -> object:
    ids = list(status)
    finished = dict.fromkeys(ids, 100.0)
    return bench.Observed(ids, status, finished, arrived, {i: 100.001 for i in arrived})


def test_every_task_completed_and_called_back_passes(bench: ModuleType) -> None:
    run = _run(bench, {"a": "completed", "b": "completed"}, {"a": 100.01, "b": 100.02})
    assert bench.judge("sqlite", run)["passed"] and bench.judge("postgres", run)["passed"]


def test_a_failed_task_fails_the_verdict_though_it_was_called_back(bench: ModuleType) -> None:
    # A task that failed (a bad image, a crashed engine) is called back at once, as fast as a completed one.
    run = _run(bench, {"a": "completed", "b": "failed"}, {"a": 100.01, "b": 100.02})
    for kind in ("sqlite", "postgres"):
        figures = bench.judge(kind, run)
        assert not figures["passed"] and figures["completed"] == 1 and figures["callbacks_received"] == 1


def test_a_missing_callback_or_a_slow_p99_fails_the_verdict(bench: ModuleType) -> None:
    assert not bench.judge("postgres", _run(bench, {"a": "completed", "b": "completed"}, {"a": 100.01}))["passed"]
    slow = _run(bench, {"a": "completed"}, {"a": 100.5})
    assert not bench.judge("sqlite", slow)["passed"] and bench.judge("postgres", slow)["passed"]
    assert not bench.judge("sqlite", _run(bench, {}, {}))["passed"]
