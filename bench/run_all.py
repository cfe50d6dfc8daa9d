"""Run every benchmark with modest durations (under 10 minutes on a 2-core machine) and print one table.

    make bench                                   # = .venv/bin/python bench/run_all.py
    .venv/bin/python bench/run_all.py --duration 4 --markdown
    .venv/bin/python bench/run_all.py --only hot_routes,memory

Each script runs as its own process and also works alone (see its --help). Results: bench/results/<name>-*.json
per script and bench/results/run_all-<time>.json for the whole run (the directory is git-ignored).
Exit status: 0 only when every benchmark finished and met every target; 1 when one missed a target or did not
finish (each script alone exits 3 on a miss, benchkit.MISSED, and 1 on a crash, which run_all retries once).
PostgreSQL rows are skipped when REELGATE_BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres)
does not answer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchkit import BENCH, MISSED, PG_ADMIN_URL, ensure_wrk, machine, markdown_table, table, write_results

BUDGET_SECONDS = 540.0  # leave a margin under the 10 minutes
# Seconds a second attempt needs; a script is retried once (a server killed from outside, a port race) if they fit.
RETRY_NEEDS = {"hot_routes": 240, "element_latency": 60, "callback_latency": 90, "memory": 100, "polling_scale": 100,
               "asset_serving": 80, "element_throughput": 70, "soak": 90}  # fmt: skip


def postgres_available() -> bool:
    import asyncio

    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def run_script(name: str, argv: list[str], tmp: Path, bench: Path = BENCH) -> dict[str, Any] | None:
    """Run one benchmark script; its results (a miss included), or None when it did not run to the end."""
    out = tmp / f"{name}.json"
    command = [sys.executable, str(bench / f"{name}.py"), *argv, "--json-out", str(out)]
    print(f"\n=== {name}: {' '.join(['.venv/bin/python', f'bench/{name}.py', *argv])}", flush=True)
    started = time.monotonic()
    code = subprocess.run(command, timeout=900).returncode
    print(f"=== {name} finished in {time.monotonic() - started:.0f} s (exit {code})", flush=True)
    if code not in (0, MISSED) or not out.exists():
        return None
    result: dict[str, Any] = json.loads(out.read_text())
    result["command"] = " ".join([".venv/bin/python", f"bench/{name}.py", *argv])
    return result


def verdict(results: dict[str, dict[str, Any]], names: list[str]) -> tuple[list[str], list[str]]:
    """The benchmarks that did not finish, and those that finished without meeting every target (a result
    without a verdict counts as a miss: nothing says it met its targets)."""
    unfinished = [name for name in names if name not in results]
    missed = [name for name, res in results.items() if res.get("passed") is not True]
    return unfinished, missed


def _verdict(passed: bool | None) -> str:
    return "-" if passed is None else "PASS" if passed else "FAIL"


def hot_rows(res: dict[str, Any]) -> list[list[Any]]:
    rows = []
    ceilings = {r["config"].split()[-1]: r["load"]["rps"] for r in res["rows"] if r["passed"] is None}
    for r in res["rows"]:
        load = r["load"]
        figures = f"{load['rps']:,.0f} req/s, p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms"
        if r["passed"] is None:
            rows.append(["hot_routes", f"{r['config']} {r['route']}", figures, "ceiling", "-", "-",
                         f"{load['other_cpu']:.0%}"])  # fmt: skip
            continue
        ceiling = ceilings.get(r["config"].split()[-1], 0)
        rows.append(["hot_routes", f"{r['config']} {r['route']}", figures,
                     f"{r['ratio']:.0%} of {ceiling:,.0f}", r["target"], _verdict(r["passed"]),
                     f"{load['other_cpu']:.0%}"])  # fmt: skip
    return rows


def element_rows(res: dict[str, Any]) -> list[list[Any]]:
    return [["element_latency", f"{r['database']}: {r['case']}",
             f"engine median {r['engine_median_ms']:.0f} ms, floor {r['floor_median_ms']:.0f} ms, "
             f"slowest poll {r['slowest_poll_ms']:.0f} ms", f"{r['ratio']:.2f}x floor",
             f"<= 2x floor + 50 = {r['target_ms']:.0f} ms", _verdict(r["passed"]), "-"] for r in res["rows"]]  # fmt: skip


def throughput_rows(res: dict[str, Any]) -> list[list[Any]]:
    f = res["rows"][0]
    other = f"{f['other_cpu']:.0%}"
    return [["element_throughput", f"sqlite: {f['elements']} elements, {f['concurrency']} at once",
             f"{f['service_el_s']:.1f} el/s vs {f['baseline_el_s']:.1f} el/s one-core baseline x {f['cores']}; "
             f"service {f['service_cores_used']:.2f} cores; {f['completed']}/{f['elements']} completed",
             f"ratio {f['ratio']:.2f}", ">= 0.8, all complete", _verdict(f["ratio_ok"]), other],
            ["element_throughput", "GET /v1/tasks/{id} during that load",
             f"p50 {f['poll_p50_ms']:.1f} ms, p99 {f['poll_p99_ms']:.1f} ms ({f['polls']} GETs)",
             f"p99 {f['poll_p99_ms']:.1f} ms", "< 25 ms", _verdict(f["poll_ok"]), other],
            ["element_throughput", "4-image element, origin answers each after 300 ms",
             f"median {f['slow_median_s']:.2f} s (sequential >= {f['slow_sequential_s']:.1f} s)",
             f"{f['slow_median_s']:.2f} s", "< 0.6 s", _verdict(f["slow_ok"]), "-"]]  # fmt: skip


def callback_rows(res: dict[str, Any]) -> list[list[Any]]:
    return [["callback_latency", f"{r['database']}: {r['tasks']} tasks at {r['rate_per_s']:g}/s",
             f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms "
             f"({r['callbacks_received']} received)", f"p99 {r['p99_ms']:.1f} ms", r["target"],
             _verdict(r["passed"]), "-"] for r in res["rows"]]  # fmt: skip


def memory_rows(res: dict[str, Any]) -> list[list[Any]]:
    out = []
    for r in res["rows"]:
        few, lots, shared_few, shared_lots = r["get_100"], r["get_all"], r["shared_100"], r["shared_all"]
        out.append(["memory", f"{r['database']}: 100 vs {r['tasks']:,} stored tasks",
                    f"RSS {r['rss_idle_mb']:.0f} -> {r['rss_after_load_all_mb']:.0f} MB, anon {r['anon_after_load_100_mb']:.0f} "
                    f"vs {r['anon_after_load_all_mb']:.0f} MB; alone GET {few['rps']:,.0f} vs "
                    f"{lots['rps']:,.0f} req/s, p99 {few['p99_ms']:.1f} vs {lots['p99_ms']:.1f} ms; sharing a core "
                    f"{shared_few['rps']:,.0f} vs {shared_lots['rps']:,.0f} req/s, CPU {r['cpu_us_100']} vs "
                    f"{r['cpu_us_all']} us a request"
                    + (f"; PK read {r['read_us_100']} vs {r['read_us_all']} us" if r.get("read_us_100") else ""),
                    f"{r['ratio']:.3f} (windows {r['ratio_min']:.2f}-{r['ratio_max']:.2f}), anon RSS "
                    f"{r['anon_growth_mb']:+.0f} MB", ">= 0.9, anon RSS <= +20 MB",
                    _verdict(r["passed"]), f"{max(few['other_cpu'], lots['other_cpu']):.0%}"])  # fmt: skip
    return out


def polling_rows(res: dict[str, Any]) -> list[list[Any]]:
    r = res["rows"][0]
    return [["polling_scale", f"sqlite: {r['tasks']:,} open Kling tasks, one worker, {r['window_s']:.0f} s",
             f"max RSS {r['max_rss_mb']:.0f} MB; {r['polls_per_s']:,.0f} polls/s; gap/interval p50 {r['gap_p50']:.2f}, "
             f"p99 {r['gap_p99']:.2f}, max {r['gap_max']:.2f}; {r['late']} later than 2x; every task polled within "
             f"{r['full_pass_s']:.0f} s", f"RSS, max gap {r['gap_max']:.2f}x", "< 300 MB, every gap <= 2x",
             _verdict(r["passed"]), "-"]]  # fmt: skip


def asset_rows(res: dict[str, Any]) -> list[list[Any]]:
    """The judged cases (directory against the floor, the S3 relay against the bucket's own direct download, see
    bench/asset_serving.py), each with both ratios in its figures."""
    rows = []
    for c in res["rows"]["cases"]:
        if c["passed"] is None:
            continue
        bucket = f", {c['vs_bucket']:.2f}x bucket direct" if c["vs_bucket"] is not None else ""
        judged_by = f"{c['vs_bucket']:.2f}x bucket" if c["vs_bucket"] is not None else f"{c['vs_floor']:.2f}x floor"
        rows.append(["asset_serving", c["case"], f"{c['mb_s']:.0f} MB/s ({c['vs_floor']:.2f}x http.server{bucket}); "
                     f"RSS +{c['growth_mb']:.1f} MB for ten at once", f"{judged_by}, RSS +{c['growth_mb']:.1f} MB",
                     c["target"], _verdict(c["passed"]), "-"])  # fmt: skip
    return rows


def soak_rows(res: dict[str, Any]) -> list[list[Any]]:
    """Two rows: drift (window 2 against the last) and the end state, each passing only if all its targets do."""
    drift, end = ([t for t in res["rows"]["targets"] if t["group"] == g] for g in ("drift", "end"))
    windows = res["rows"]["windows"]
    other = f"{max(w['other_cpu'] for w in windows):.0%}"

    def row(case: str, targets: list[dict[str, Any]]) -> list[Any]:
        judged = [t["passed"] for t in targets if t["passed"] is not None]
        return ["soak", case, "; ".join(f"{t['target']}: {t['measured']}" for t in targets),
                "; ".join(t["rule"] for t in targets), "all", _verdict(all(judged) if judged else None), other]  # fmt: skip

    return [row(f"sqlite: {len(windows)} windows, window 2 vs last", drift), row("end state", end)]


SUMMARIES: dict[str, Callable[[dict[str, Any]], list[list[Any]]]] = {
    "hot_routes": hot_rows,
    "element_latency": element_rows,
    "element_throughput": throughput_rows,
    "callback_latency": callback_rows,
    "memory": memory_rows,
    "polling_scale": polling_rows,
    "asset_serving": asset_rows,
    "soak": soak_rows,
}


def plan(args: argparse.Namespace, dbs: str) -> dict[str, list[str]]:
    d = f"{args.duration:g}"
    return {
        "hot_routes": [
            "--duration",
            d,
            "--rounds",
            str(args.rounds),
            "--warmup",
            "1",
            "--quiet-wait",
            "3",
            "--databases",
            dbs,
        ],  # fmt: skip
        "element_latency": ["--runs", "5", "--video-runs", "3", "--quiet-wait", "2"],
        # 100 elements, 32 at once (about 25 s in all; alone it defaults to 200)
        "element_throughput": ["--elements", "100", "--baseline-runs", "2", "--quiet-wait", "3"],
        "callback_latency": ["--rate", "20", "--databases", "sqlite"],  # --tasks chosen from the time left
        # Judged on windows with both servers loaded at once on one core (20 of 2 s at the defaults): this machine's
        # speed moves by half within a quarter of a second, which runs one after another measured as much as the code.
        "memory": [
            "--duration",
            f"{max(1.0, args.duration / 2):g}",
            "--warmup",
            "1",
            "--quiet-wait",
            "3",
            "--rounds",
            str(max(4, args.rounds * 20 // 3)),
            "--alone-rounds",
            "2",
        ],  # fmt: skip
        # 75 s: a warm-up poll and then at least one judged gap for every task, even those polled every 33 s at the
        # 30 s back-off cap plus jitter (its default, 150 s, is for a closer look).
        "polling_scale": ["--duration", "75"],
        # Five paired rounds of 50 MiB downloads from each server, then ten at once from each backend (60-70 s).
        "asset_serving": ["--mib", "50", "--rounds", "5"],
        # One minute in three windows of 20 s (window 1 the warm-up): mostly the end state; drift needs --minutes 10.
        "soak": ["--minutes", "1", "--window", "20"],
    }


def run_scripts(args: argparse.Namespace, steps: dict[str, list[str]], started: float) -> dict[str, dict[str, Any]]:
    """Each script of ``--only`` in turn (one retry when it did not finish and time allows); their results."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="reelgate-bench-all-") as tmp:
        for name in args.only.split(","):
            argv_ = steps[name]
            if name == "callback_latency":
                # seconds what still runs after it takes (measured)
                after = {"memory": 90, "polling_scale": 90, "asset_serving": 70, "soak": 80}
                left = BUDGET_SECONDS - (time.monotonic() - started) - sum(after[n] for n in after if n in args.only)
                argv_ = [*argv_, "--tasks", "1000" if left > 1000 / 20 + 40 else "300"]
            res = run_script(name, argv_, Path(tmp))
            if res is None and BUDGET_SECONDS - (time.monotonic() - started) > RETRY_NEEDS.get(name, 120):
                print(f"=== {name} did not finish; running it once more", flush=True)
                res = run_script(name, argv_, Path(tmp))
            if res is not None:
                results[name] = res
    return results


def finish(results: dict[str, dict[str, Any]], names: list[str], info: dict[str, Any], elapsed: float,
           markdown: bool = False) -> int:  # fmt: skip
    """Print the summary, write run_all's results; the exit status: 0 only if every benchmark met every target."""
    rows = [row for name, res in results.items() for row in SUMMARIES[name](res)]
    headers = ["benchmark", "case", "figures", "judged by", "target", "result", "other CPU"]
    print(f"\n=== summary ({elapsed:.0f} s, {info['cpus']} CPUs, load tool {info['load_tool']}, "
          f"commit {info['commit']}, CPU calibration {info['cpu_calibration_ms']} ms)")  # fmt: skip
    print(table(headers, rows))
    if markdown:
        print("\n" + markdown_table(headers, rows))
    failed, missed = verdict(results, names)
    path = write_results("run_all", {"machine": info, "seconds": round(elapsed), "rows": rows, "failed": failed,
                                     "missed": missed, "commands": {n: r.get("command") for n, r in results.items()},
                                     "results": results})  # fmt: skip
    print(f"\nresults in {path}" + (f"; benchmarks that did not finish: {', '.join(failed)}" if failed else "")
          + (f"; targets missed by: {', '.join(missed)}" if missed else ""))  # fmt: skip
    return 1 if failed or missed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4, help="seconds per measured load run (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds in hot_routes and memory (default 3)")
    parser.add_argument("--only", default=",".join(SUMMARIES), help="comma list of benchmarks to run")
    parser.add_argument("--markdown", action="store_true", help="also print the summary as a Markdown table")
    args = parser.parse_args(argv)
    started = time.monotonic()
    ensure_wrk()
    info = machine()
    dbs = "sqlite,postgres" if postgres_available() else "sqlite"
    if dbs == "sqlite":
        print(f"PostgreSQL at {PG_ADMIN_URL} does not answer: PostgreSQL rows skipped")
    results = run_scripts(args, plan(args, dbs), started)
    return finish(results, args.only.split(","), info, time.monotonic() - started, args.markdown)


if __name__ == "__main__":
    sys.exit(main())
