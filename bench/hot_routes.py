"""The two hot routes against the ceiling of the same server stack, measured in one run.

For each worker count (API processes) it starts the ceiling, a bare JSON endpoint served by the same uvicorn
configuration and reached the same way as the task query (bench/ceiling_app.py), and, on each database,
``reelgate serve --no-tasks``; it measures:

- ``GET /v1/tasks/{id}`` over 1,000 real tasks, a random one each request (key check + one task read); target
  >= 50% of the ceiling, p99 < 25 ms. Not one id: the store's read coalescer answers concurrent reads of one id
  with one query, so a single hot id measured the coalescer, not the read (500 ids: 0.88x the req/s of one);
- ``POST /v1/videos/generations`` with the seed example body (https://example.com URLs, never fetched because
  no worker runs); target >= 25% of the ceiling.

All servers of one process count run at once, idle but for the one being driven, and the runs are interleaved in
rounds (ceiling, GET, POST per database, again and again); each figure is the median over the rounds, so a
neighbour's burst of CPU hits the ceiling and the routes alike. "other CPU" is the share of the machine that
processes we did not start used during the run (the worst round): high values mean the figures are noisy.

Load: wrk -t2 -c64 (or bench/loadgen.py when wrk is missing), a short unmeasured warm-up before each run.

    .venv/bin/python bench/hot_routes.py --duration 10 --rounds 3
    .venv/bin/python bench/hot_routes.py --databases sqlite --workers 1 --duration 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from benchkit import (
    CEILING_PATH,
    SEED_BODY,
    Db,
    HasPids,
    Load,
    Reelgate,
    ceiling_server,
    database,
    load,
    machine,
    median,
    reelgate,
    report_verdict,
    table,
    wait_for_quiet,
    warm,
)

GET_SHARE, GET_P99_MS, POST_SHARE = 0.50, 25.0, 0.25
GET_ROUTE, POST_ROUTE = "GET /v1/tasks/{id}", "POST /v1/videos/generations"
READ_IDS = 1000  # distinct tasks the GET run reads, at random: concurrent reads rarely share an id
# A probe whose media is on a closed loopback port: if a worker ran, it would fail at once, on loopback only.
PROBE_BODY: dict[str, Any] = json.loads(
    json.dumps(SEED_BODY)
    .replace("https://example.com/front.jpg", "https://127.0.0.1:9/probe-front.jpg")
    .replace("https://example.com/side.jpg", "https://127.0.0.1:9/probe-side.jpg")
)


@dataclass
class Target:
    """One thing wrk drives: the ceiling, or one route of one configuration."""

    config: str
    route: str
    url: str
    watch: list[HasPids]
    options: dict[str, Any]
    command: str
    runs: list[Load] = field(default_factory=list)


@dataclass
class Row:
    config: str
    route: str
    load: Load  # the median figures over the rounds
    ratio: float
    target: str
    passed: bool | None
    command: str
    rounds: list[Load]


def _submit(rg: Reelgate, body: dict[str, Any]) -> str:
    answer = httpx.post(f"{rg.base}/v1/videos/generations", json=body, headers=rg.headers, timeout=10)
    answer.raise_for_status()
    return str(answer.json()["id"])


def assert_no_task_workers(rg: Reelgate) -> None:
    """``--no-tasks`` must really mean no worker: otherwise one would try to fetch the example.com URLs."""
    probe = _submit(rg, PROBE_BODY)
    time.sleep(1.5)
    status = httpx.get(f"{rg.base}/v1/tasks/{probe}", headers=rg.headers, timeout=10).json()["status"]
    if status != "pending":
        raise RuntimeError(f"reelgate serve --no-tasks ran a worker anyway (probe task went to {status!r}); "
                           "refusing to submit URLs that a worker would fetch")  # fmt: skip


def _run(t: Target, args: argparse.Namespace) -> Load:
    wait_for_quiet(args.quiet_wait)
    common = {"connections": args.connections, "threads": args.threads, **t.options}
    warm(t.url, args.warmup, **common)
    return load(t.url, duration=args.duration, watch=t.watch, **common)


def _median_load(runs: list[Load]) -> Load:
    """Each figure's median over the rounds (errors summed, other CPU the worst round)."""
    first = runs[0]
    return Load(requests=sum(r.requests for r in runs), seconds=round(sum(r.seconds for r in runs), 2),
                rps=round(median([r.rps for r in runs]), 1), p50_ms=round(median([r.p50_ms for r in runs]), 2),
                p90_ms=round(median([r.p90_ms for r in runs]), 2), p99_ms=round(median([r.p99_ms for r in runs]), 2),
                max_ms=max(r.max_ms for r in runs), errors=sum(r.errors for r in runs), tool=first.tool,
                other_cpu=max(r.other_cpu for r in runs))  # fmt: skip


def submit_many(rg: Reelgate, count: int) -> list[str]:
    """``count`` tasks of the seed example (8 submits at a time); their ids."""
    with httpx.Client(headers=rg.headers, timeout=30) as client, ThreadPoolExecutor(8) as pool:

        def one(_: int) -> str:
            answer = client.post(f"{rg.base}/v1/videos/generations", json=SEED_BODY)
            answer.raise_for_status()
            return str(answer.json()["id"])

        return list(pool.map(one, range(count)))


def route_server(stack: contextlib.ExitStack, kind: str, workers: int, **env: str) -> tuple[Reelgate, Db, list[str]]:
    """``reelgate serve --no-tasks`` on a fresh ``kind`` database, checked to run no worker, and READ_IDS tasks."""
    db = stack.enter_context(database(kind))
    rg = stack.enter_context(reelgate(db, workers=workers, no_tasks=True, **env))
    assert_no_task_workers(rg)
    return rg, db, submit_many(rg, READ_IDS)


def route_request(rg: Reelgate, route: str, task_ids: list[str]) -> tuple[str, dict[str, Any]]:
    """The URL and load options of one hot route: GET reads a random one of ``task_ids`` each request, POST
    submits the seed example."""
    if route == POST_ROUTE:
        body = json.dumps(SEED_BODY).encode()
        return f"{rg.base}/v1/videos/generations", {"method": "POST", "body": body, "headers": rg.headers}
    paths = [f"/v1/tasks/{task_id}" for task_id in task_ids]
    return f"{rg.base}{paths[0]}", {"headers": rg.headers, "paths": paths}


def _targets(stack: contextlib.ExitStack, workers: int, args: argparse.Namespace) -> list[Target]:
    url, proc = stack.enter_context(ceiling_server(workers))
    targets = [Target(f"ceiling x{workers}", f"GET {CEILING_PATH} (bare endpoint)", url, [proc], {},
                      f".venv/bin/python bench/ceiling_app.py --workers {workers}; wrk -t2 -c64 ...{CEILING_PATH}")]  # fmt: skip
    for kind in args.databases.split(","):
        rg, db, task_ids = route_server(stack, kind, workers)
        command = (f".venv/bin/python bench/hot_routes.py --databases {kind} --workers {workers} "
                   f"--duration {args.duration:g} --rounds {args.rounds}")  # fmt: skip
        for route in (GET_ROUTE, POST_ROUTE):
            url, options = route_request(rg, route, task_ids)
            targets.append(Target(f"{kind} x{workers}", route, url, [rg.proc, db], options, command))
    return targets


def measure_workers(workers: int, args: argparse.Namespace) -> list[Row]:
    """All servers of one process count up at once; each round drives every target in turn (interleaved)."""
    with contextlib.ExitStack() as stack:
        targets = _targets(stack, workers, args)
        for round_no in range(args.rounds):
            # Each round starts one target later, so no target always runs first (or right after the ceiling).
            shift = round_no % len(targets)
            for t in targets[shift:] + targets[:shift]:
                t.runs.append(_run(t, args))
                print(f"  round {round_no + 1}: {t.config:<12} {t.route:<28} {t.runs[-1].rps:>9,.0f} req/s "
                      f"p99 {t.runs[-1].p99_ms:.1f} ms (other CPU {t.runs[-1].other_cpu:.0%})", flush=True)  # fmt: skip
    ceiling = _median_load(targets[0].runs)
    rows = [Row(targets[0].config, targets[0].route, ceiling, 1.0, "-", None, targets[0].command, targets[0].runs)]
    for t in targets[1:]:
        figures = _median_load(t.runs)
        ratio = figures.rps / ceiling.rps
        if t.route == GET_ROUTE:
            goal, ok = (
                f">= {GET_SHARE:.0%}, p99 < {GET_P99_MS:g} ms",
                ratio >= GET_SHARE and figures.p99_ms < GET_P99_MS,
            )
        else:
            goal, ok = f">= {POST_SHARE:.0%}", ratio >= POST_SHARE
        rows.append(Row(t.config, t.route, figures, ratio, goal, ok and not figures.errors, t.command, t.runs))
    return rows


def render(rows: list[Row]) -> str:
    headers = ["config", "route", "req/s", "p50 ms", "p99 ms", "ratio", "target", "result", "other CPU"]
    body = [
        [r.config, r.route, r.load.rps, r.load.p50_ms, r.load.p99_ms, f"{r.ratio:.0%}", r.target,
         "-" if r.passed is None else ("PASS" if r.passed else "FAIL") + (f" ({r.load.errors} errors)"
                                                                           if r.load.errors else ""),
         f"{r.load.other_cpu:.0%}"]
        for r in rows
    ]  # fmt: skip
    return table(headers, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each run (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are shown (default 3)")
    parser.add_argument("--databases", default="sqlite,postgres", help="comma list: sqlite,postgres")
    parser.add_argument("--workers", default="1,2", help="comma list of API process counts (default 1,2)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30,
        help="wait up to this many seconds for other processes to go quiet before each run",
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    info = machine()
    rows: list[Row] = []
    for workers in (int(w) for w in args.workers.split(",")):
        rows += measure_workers(workers, args)
    print()
    print(f"hot routes: wrk -t{args.threads} -c{args.connections}, median of {args.rounds} x {args.duration:g} s, "
          f"{info['cpus']} CPUs, load tool {info['load_tool']}, CPU calibration {info['cpu_calibration_ms']} ms")  # fmt: skip
    print(render(rows))
    passed = all(r.passed for r in rows if r.passed is not None)
    return report_verdict("hot_routes", info, args, passed, [asdict(r) for r in rows])


if __name__ == "__main__":
    sys.exit(main())
