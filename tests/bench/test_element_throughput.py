"""bench/element_throughput.py runs end to end on a tiny load and reports every figure it judges (no timing asserted)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

Import = Callable[[str], ModuleType]


def test_a_tiny_run_completes_every_element_and_prints_its_figures(
    bench: Import, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    et = bench("element_throughput")
    out = tmp_path / "out.json"
    argv = ["--elements", "6", "--concurrency", "3", "--warmup", "3", "--slow-runs", "1", "--baseline-runs", "1",
            "--poll-rate", "100", "--quiet-wait", "0", "--json-out", str(out)]  # fmt: skip
    code = et.main(argv)
    printed = capsys.readouterr().out
    assert code in (0, bench("benchkit").MISSED)  # a miss is a figure on a loaded machine, not a failure here
    f = json.loads(out.read_text())["rows"][0]
    assert f["completed"] == f["elements"] == 6 and f["failures"] == []
    assert f["service_el_s"] > 0 and f["baseline_el_s"] > 0 and f["cores"] >= 1 and f["ratio"] > 0
    assert f["polls"] > 0 and f["poll_errors"] == 0 and f["poll_p99_ms"] > 0
    assert len(f["slow_runs_s"]) == 1 and f["slow_runs_s"][0] >= et.SLOW_DELAY_S  # the origin really waited
    assert f["service_cpu_s"] > 0 and f["service_processes"]
    for label in ("el/s", "ratio service / ideal", "GET /v1/tasks/{id} during the load", "slow origin"):
        assert label in printed
