"""A/B of one hot route between an earlier commit and this tree, both served at once, in interleaved rounds.

Judging a change to the hot path by two separate hot_routes runs compares minutes that differ by 20-40% on a
shared machine. Here both versions run side by side: "A" is ``--base`` (a git ref, checked out into a temporary
worktree and imported through ``PYTHONPATH``), "B" is this tree; each on a fresh database, with the same uvicorn
configuration. Every round drives A and B back to back (ABBA order over rounds), next to this tree's ceiling, and
the verdict is the median over rounds of each round's own B/A ratio.

    .venv/bin/python bench/ab_routes.py --base HEAD~1 --route post --databases postgres --workers 2
    .venv/bin/python bench/ab_routes.py --base 3796ff3 --route get --rounds 8
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchkit import (
    ROOT,
    HasPids,
    Load,
    ceiling_server,
    load,
    machine,
    median,
    table,
    wait_for_quiet,
    warm,
    write_results,
)
from hot_routes import GET_ROUTE, POST_ROUTE, route_request, route_server


@contextlib.contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """``ref`` checked out (detached) in a temporary git worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="reelgate-ab-") as tmp:
        path = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path), ref], check=True,
                       capture_output=True)  # fmt: skip
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)


def _target(stack: contextlib.ExitStack, args: argparse.Namespace, **env: str) -> tuple[str, dict[str, Any],
                                                                                      list[HasPids]]:  # fmt: skip
    """One side: a server as hot_routes starts it, and the request hot_routes sends it."""
    rg, db, task_id = route_server(stack, args.databases, args.workers, **env)
    url, options = route_request(rg, POST_ROUTE if args.route == "post" else GET_ROUTE, task_id)
    return url, options, [rg.proc, db]


def measure(args: argparse.Namespace, base_src: Path) -> dict[str, list[Load]]:
    with contextlib.ExitStack() as stack:
        ceiling_url, ceiling = stack.enter_context(ceiling_server(args.workers))
        sides: dict[str, tuple[str, dict[str, Any], list[HasPids]]] = {
            "ceiling": (ceiling_url, {}, [ceiling]),
            "A": _target(stack, args, PYTHONPATH=str(base_src)),
            "B": _target(stack, args),
        }
        runs: dict[str, list[Load]] = {name: [] for name in sides}
        for round_no in range(args.rounds):
            order = ["ceiling", "A", "B"] if round_no % 2 == 0 else ["B", "A", "ceiling"]
            for name in order:
                url, options, watch = sides[name]
                wait_for_quiet(args.quiet_wait)
                warm(url, args.warmup, **options)
                runs[name].append(load(url, duration=args.duration, watch=watch, **options))
            last = {name: r[-1] for name, r in runs.items()}
            print(f"  round {round_no + 1}: ceiling {last['ceiling'].rps:,.0f}  A {last['A'].rps:,.0f} "
                  f"(p99 {last['A'].p99_ms:.1f} ms)  B {last['B'].rps:,.0f} req/s (p99 {last['B'].p99_ms:.1f} ms)  "
                  f"B/A {last['B'].rps / last['A'].rps:.3f}", flush=True)  # fmt: skip
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git ref of side A (side B is this tree)")
    parser.add_argument("--route", choices=("get", "post"), default="post")
    parser.add_argument("--databases", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="API processes per server (default 1)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=float, default=4)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--quiet-wait", type=float, default=3)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    info = machine()
    with worktree(args.base) as base:
        runs = measure(args, base / "src")
    rps = {name: [r.rps for r in side] for name, side in runs.items()}
    ratios = [b / a for a, b in zip(rps["A"], rps["B"], strict=True)]
    rows = [[label, median(rps[name]), f"{median(rps[name]) / median(rps['ceiling']):.1%}",
             f"{median([r.p99_ms for r in runs[name]]):.1f}"]
            for name, label in (("A", "A " + args.base), ("B", "B this tree"))]  # fmt: skip
    print(f"\n{args.route.upper()} on {args.databases} x{args.workers}, {args.rounds} rounds of {args.duration:g} s")
    print(table(["side", "median req/s", "of ceiling", "median p99 ms"], rows))
    print(f"B/A per round: {' '.join(f'{r:.2f}' for r in ratios)}; median {median(ratios):.3f}")
    p99 = {name: [r.p99_ms for r in side] for name, side in runs.items()}
    path = write_results("ab_routes", {"machine": info, "args": vars(args), "rps": rps, "p99_ms": p99,
                                       "b_over_a": ratios}, args.json_out)  # fmt: skip
    print(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
