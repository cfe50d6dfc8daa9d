"""bench/soak.py: a short real run ends with every task settled and called back once; its drift and ledger rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

Import = Callable[[str], ModuleType]


def test_a_short_soak_runs_every_kind_of_request_and_checks_the_end_state(bench: Import, tmp_path: Path) -> None:
    soak = bench("soak")
    out = tmp_path / "soak.json"
    soak.main(["--minutes", "0.2", "--window", "4", "--rate", "20", "--images", "6", "--json-out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert len(rows["windows"]) == 3
    routes = {route for w in rows["windows"] for route in w["routes"]}
    assert {soak.GET_TASK, soak.SUBMIT, "GET /v1/tasks", "GET /v1/credits"} <= routes
    assert all(w["processes"] >= 1 and w["rss_mb"] > 0 and w["fds"] > 0 and w["db_mb"] > 0 for w in rows["windows"])
    end = {t["target"]: t for t in rows["targets"]}
    assert end["every task terminal"]["passed"], end["every task terminal"]
    assert end["credits settled (GET /v1/credits)"]["passed"] and end["ledger: settled once per task"]["passed"]
    assert rows["ledger"]["tasks"] == rows["ledger"]["accepted"] > 0
    assert end["callbacks exactly once"]["passed"] and rows["callbacks"]["expected"] > 0
    assert end["unexpected answers"]["passed"], rows["problems"]


def _window(rss: float, fds: int, p99: float) -> dict[str, Any]:
    return {"rss_mb": rss, "fds": fds, "get_p99_ms": p99, "processes": 3}


def test_drift_compares_window_two_with_the_last(bench: Import) -> None:
    soak = bench("soak")
    warm = _window(300.0, 10, 50.0)  # window 1 is the warm-up: never judged
    verdicts = [t["passed"] for t in soak.drift([warm, _window(400.0, 80, 3.0), _window(400.0, 80, 3.0)])]
    assert verdicts == [True, True, True]
    leak = soak.drift([warm, _window(400.0, 80, 3.0), _window(441.0, 86, 3.0)])
    assert [t["passed"] for t in leak] == [False, False, True]
    assert [t["passed"] for t in soak.drift([warm, _window(400.0, 80, 1.0), _window(400.0, 80, 2.9)])][2]  # < 2 ms
    assert not [t["passed"] for t in soak.drift([warm, _window(400.0, 80, 20.0), _window(400.0, 80, 22.5)])][2]
    assert [t["passed"] for t in soak.drift([warm, _window(400.0, 80, 3.0)])] == [None]


def test_the_ledger_rule_finds_a_task_settled_twice_or_wrongly(bench: Import) -> None:
    problem = bench("soak")._ledger_problem
    assert problem("completed", 1000, 1000, {"reserve": [1000], "capture": [1000]}) is None
    assert problem("failed", 1000, 0, {"reserve": [1000], "release": [1000]}) is None
    assert problem("completed", 1000, 1000, {"reserve": [1000], "capture": [1000, 1000]}) is not None
    assert problem("completed", 1000, 1000, {"reserve": [1000], "capture": [1000], "release": [1000]}) is not None
    assert problem("failed", 1000, 0, {"reserve": [1000], "capture": [1000]}) is not None
    assert problem("failed", 1000, 0, {"reserve": [1000]}) is not None
    assert problem("pending", 1000, None, {"reserve": [1000]}) is not None
