"""The benchmarks' verdicts check what they claim: memory growth, RSS samples, a miss fails ``make bench``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

Import = Callable[[str], ModuleType]


def _polling_run(ps: ModuleType, rss: list[float] | None, window: float = 75.0) -> object:
    """A finished polling_scale run with no late poll, sampled ``rss`` (None: the sampler never started)."""
    sampler = None if rss is None else ps.Sampler(pid=0, rss=rss)
    return ps.Run(argparse.Namespace(), ps.Backoff(), tasks=10_000, t0=1000.0, end=1000.0 + window, sampler=sampler)


def test_polling_scale_fails_its_rss_check_without_samples(bench: Import) -> None:
    ps = bench("polling_scale")
    assert ps.figures(_polling_run(ps, [150.0] * 80))["passed"]
    assert not ps.figures(_polling_run(ps, []))["passed"]  # passed before: max(rss, default=0.0) < 300
    assert not ps.figures(_polling_run(ps, None))["passed"]
    assert not ps.figures(_polling_run(ps, [150.0] * 5))["passed"]  # 5 samples do not cover a 75 s window
    assert not ps.figures(_polling_run(ps, [150.0] * 79 + [301.0]))["passed"]


def test_memory_judges_anonymous_rss_growth_as_well_as_the_ratio(bench: Import) -> None:
    memory = bench("memory")
    assert memory.verdict(0.95, 90.1, 92.1)["passed"]
    leak = memory.verdict(0.95, 90.4, 130.6)  # measured with a task cache that never forgets (+40 MB)
    assert not leak["passed"] and not leak["rss_ok"] and leak["ratio_ok"] and leak["anon_growth_mb"] == 40.2
    slow = memory.verdict(0.85, 90.0, 90.0)
    assert not slow["passed"] and not slow["ratio_ok"] and slow["rss_ok"]


def _script(folder: Path, name: str, code: int, passed: bool | None) -> None:
    """A stand-in benchmark script: writes its results (when ``passed`` is not None) and exits with ``code``."""
    result = "" if passed is None else json.dumps({"benchmark": name, "passed": passed, "rows": []})
    (folder / f"{name}.py").write_text(
        "import sys\n"
        f"out = sys.argv[sys.argv.index('--json-out') + 1]\n"
        f"if {result!r}:\n    open(out, 'w').write({result!r})\n"
        f"sys.exit({code})\n"
    )


def test_run_all_tells_a_miss_from_a_crash_and_exits_non_zero_on_either(bench: Import, tmp_path: Path) -> None:
    run_all, benchkit = bench("run_all"), bench("benchkit")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    _script(scripts, "met", 0, True)
    _script(scripts, "missed", benchkit.MISSED, False)
    _script(scripts, "crashed", 1, None)
    results = {}
    for name in ("met", "missed", "crashed"):
        res = run_all.run_script(name, [], tmp_path, bench=scripts)
        if res is not None:
            results[name] = res
    assert set(results) == {"met", "missed"}  # a miss is a finished run with a verdict, not a crash to retry
    assert run_all.verdict(results, ["met", "missed", "crashed"]) == (["crashed"], ["missed"])
    assert run_all.verdict({"met": results["met"]}, ["met"]) == ([], [])


def test_make_bench_exits_non_zero_when_a_target_is_missed(bench: Import) -> None:
    run_all, ps = bench("run_all"), bench("polling_scale")
    info = {"cpus": 2, "load_tool": "wrk", "commit": "test", "cpu_calibration_ms": 10.0}
    good = {"passed": True, "rows": [ps.figures(_polling_run(ps, [150.0] * 80))], "command": "polling_scale"}
    missed = {"passed": False, "rows": [ps.figures(_polling_run(ps, [350.0] * 80))], "command": "polling_scale"}
    assert run_all.finish({"polling_scale": good}, ["polling_scale"], info, 80.0) == 0
    assert run_all.finish({"polling_scale": missed}, ["polling_scale"], info, 80.0) == 1  # was 0
    assert run_all.finish({}, ["polling_scale"], info, 80.0) == 1  # did not finish


def test_report_verdict_exits_missed_on_a_miss(bench: Import) -> None:
    benchkit = bench("benchkit")
    args = argparse.Namespace(json_out=None)
    assert benchkit.report_verdict("x", {}, args, True, []) == 0
    assert benchkit.report_verdict("x", {}, args, False, []) == benchkit.MISSED != 1
