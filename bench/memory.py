"""Memory and read speed against the number of stored tasks.

Two ``reelgate serve`` processes side by side (each one process: API, workers, dispatcher), each on a fresh
database. Completed tasks are inserted straight into their ``tasks`` tables (the row shape of migration 0001):
100 into the first, 100,000 into the second. RSS (VmRSS) of each is read idle, before and after the insert, and
after the load. GET /v1/tasks/{id} then runs on random ids among each server's tasks (wrk, 64 connections a
server, a Lua script picking the id), in two phases:

- alone: each server in turn with the whole machine, --alone-rounds rounds in ABBA order, for the absolute
  figures (req/s, p50, p99);
- sharing one core: both servers pinned to the same core and loaded at the same time, wrk on the other core, for
  --rounds windows. The scheduler gives each the same CPU time, so each window's lots/few req/s is what a request
  costs with 100 stored tasks over what it costs with 100,000, with both measured at the same instants. (This
  machine's speed moves by half within a quarter of a second: a CPU loop's 250 ms means ranged 8-15 ms; runs one
  after another, even back to back, compared that as much as the code.)

Judged by: the median of the shared windows' ratios, which should be about 1 (>= 0.9 passes), and memory not
growing with the number of stored tasks: after the same load, the anonymous RSS (RssAnon: heap and stacks, what
the process holds) of the 100,000-task server may exceed the 100-task server's by at most 20 MB. VmRSS is shown
but not judged: on SQLite it counts the pages of the memory-mapped database file the reads touched (RssFile),
which the kernel shares with its page cache and drops under pressure. Each server's CPU per request in the
windows is shown beside it. On SQLite it also times the route's primary-key read in this process (CPU
microseconds per read, random ids, no HTTP).

    .venv/bin/python bench/memory.py --duration 2 --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import string
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from benchkit import (
    CpuWatch,
    Db,
    Load,
    Reelgate,
    database,
    load,
    machine,
    median,
    pids_cpu_seconds,
    pin,
    reelgate,
    report_verdict,
    rss_mb,
    table,
    wait_for_quiet,
    warm,
)

RATIO_TARGET = 0.9
# Anonymous RSS the 100,000-task server may hold beyond the 100-task one after the same load. Run to run the two
# differ by a few MB; anything that keeps a little per stored or per read task (a cache without a bound) is more.
ANON_GROWTH_MB = 20.0
_COLUMNS = ("id", "account_id", "api_key_id", "model", "provider", "status", "progress", "cancellable", "created",
            "created_at", "updated_at", "finished_at", "deadline", "run_after", "attempts", "params", "state",
            "callback_url", "price", "user_group", "billing_rule", "estimated_time", "charged", "result")  # fmt: skip
_ALPHABET = string.ascii_lowercase + string.digits


def _suffix(n: int) -> str:
    out = []
    for _ in range(8):
        n, r = divmod(n, len(_ALPHABET))
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def task_rows(account_id: int, key_id: int, start: int, count: int) -> list[tuple[Any, ...]]:
    """Completed local-engine tasks, shaped like the ones the service writes (params, result_data, settlement)."""
    rng = random.Random(start)
    now = time.time()
    rows = []
    for n in range(start, start + count):
        created = now - 86_400 + n * 0.5
        task_id = f"task-unified-{int(created)}-{_suffix(n * 7919 + 12345)}"
        front, side = f"{rng.getrandbits(256):064x}.jpg", f"{rng.getrandbits(256):064x}.jpg"
        params = {"element_name": f"Character {n}", "element_description": "A young male character with short hair",
                  "reference_type": "image_refer",
                  "element_image_list": {"frontal_image": f"https://example.com/{n}/front.jpg",
                                         "refer_images": [{"image_url": f"https://example.com/{n}/side.jpg"}]}}  # fmt: skip
        result = {"element_id": str(10**12 + n), "element_name": params["element_name"],
                  "element_description": params["element_description"], "reference_type": "image_refer",
                  "tag_list": [], "element_image_list": {"frontal_image": f"http://127.0.0.1/assets/{front}",
                                                         "refer_images": [{"image_url": f"http://127.0.0.1/assets/{side}"}]}}  # fmt: skip
        rows.append((task_id, account_id, key_id, "kling-custom-element", "local", "completed", 100, 0, int(created),
                     created, created + 3, created + 3, created + 900, created, 1, json.dumps(params), "{}", None,
                     1000, "default", "per_call", 30, 1000, json.dumps(result)))  # fmt: skip
    return rows


async def _pg(url: str, rows: list[tuple[Any, ...]] | None) -> tuple[int, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        if rows:
            await conn.copy_records_to_table("tasks", records=rows, columns=_COLUMNS)
        row = await conn.fetchrow("SELECT id, account_id FROM api_keys ORDER BY id LIMIT 1")
        return int(row["id"]), int(row["account_id"])
    finally:
        await conn.close()


def owner_ids(rg: Reelgate, db: Db) -> tuple[int, int]:
    if db.kind == "postgres":
        return asyncio.run(_pg(db.url, None))
    with contextlib.closing(sqlite3.connect(rg.sqlite_path, timeout=30)) as conn:
        key_id, account_id = conn.execute("SELECT id, account_id FROM api_keys ORDER BY id LIMIT 1").fetchone()
    return int(key_id), int(account_id)


def insert(rg: Reelgate, db: Db, rows: list[tuple[Any, ...]]) -> None:
    if db.kind == "postgres":
        asyncio.run(_pg(db.url, rows))
        return
    sql = f"INSERT INTO tasks ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    with contextlib.closing(sqlite3.connect(rg.sqlite_path, timeout=30)) as conn, conn:
        conn.executemany(sql, rows)


def rss(rg: Reelgate, part: str = "VmRSS") -> float:
    return round(sum(rss_mb(pid, part) for pid in rg.proc.tree_pids()), 1)


def verdict(ratio: float, anon_few_mb: float, anon_lots_mb: float) -> dict[str, Any]:
    """Both criteria: the GET ratio, and anonymous memory not growing with the stored tasks."""
    growth = round(anon_lots_mb - anon_few_mb, 1)
    ratio_ok, rss_ok = ratio >= RATIO_TARGET, growth <= ANON_GROWTH_MB
    return {"anon_growth_mb": growth, "ratio_ok": ratio_ok, "rss_ok": rss_ok, "passed": ratio_ok and rss_ok}


def get_load(rg: Reelgate, ids: list[str], args: argparse.Namespace) -> Load:
    wait_for_quiet(args.quiet_wait)
    paths = [f"/v1/tasks/{i}" for i in ids]
    common: dict[str, Any] = {"headers": rg.headers, "paths": paths, "connections": 64, "threads": 2}
    warm(f"{rg.base}/v1/tasks/{ids[0]}", args.warmup, **common)
    return load(f"{rg.base}/v1/tasks/{ids[0]}", duration=args.duration, watch=[rg.proc, rg.db], **common)


@dataclass
class Window:
    """One window of both servers loaded at once on a shared core: their loads and server CPU µs a request."""

    few: Load
    lots: Load
    few_cpu_us: float
    lots_cpu_us: float

    @property
    def ratio(self) -> float:
        return self.lots.rps / self.few.rps


def cores() -> tuple[list[int], list[int]]:
    """The core both servers share (the last one) and the load generator's (the others; the same on one core)."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[-1:], cpus[:-1] or cpus


def _server_cpu(pids: list[int]) -> float:
    return sum(pids_cpu_seconds(pids).values())


def _pair(
    servers: dict[str, tuple[Reelgate, list[str]]], pids: dict[str, list[int]], duration: float, load_cores: list[int]
) -> Window:
    """Both servers under load for the same ``duration`` seconds, each with its own wrk on ``load_cores``."""
    before = {name: _server_cpu(p) for name, p in pids.items()}
    watch = CpuWatch([rg.proc for rg, _ in servers.values()] + [rg.db for rg, _ in servers.values()])
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(load, f"{rg.base}/v1/tasks/{ids[0]}", duration=duration, headers=rg.headers,
                                     paths=[f"/v1/tasks/{i}" for i in ids], connections=64, threads=1,
                                     cpus=load_cores) for name, (rg, ids) in servers.items()}  # fmt: skip
        loads = {name: f.result() for name, f in futures.items()}
    other = round(watch.other_share(), 3)  # after both wrk are reaped: neither counts as the other's neighbour
    cost = {name: (_server_cpu(p) - before[name]) / max(1, loads[name].requests) * 1e6 for name, p in pids.items()}
    for one in loads.values():
        one.other_cpu = other
    return Window(loads["few"], loads["lots"], round(cost["few"], 1), round(cost["lots"], 1))


def shared_windows(servers: dict[str, tuple[Reelgate, list[str]]], args: argparse.Namespace) -> list[Window]:
    """``args.rounds`` windows of both servers pinned to one core and loaded at once (see the module's doc)."""
    pids = {name: rg.proc.tree_pids() + rg.db.pids() for name, (rg, _) in servers.items()}
    server_cores, load_cores = cores()
    for p in pids.values():
        pin(p, server_cores)
    try:
        wait_for_quiet(args.quiet_wait)
        _pair(servers, pids, 1, load_cores)  # unmeasured: connections open, and both settle into sharing the core
        return [_pair(servers, pids, args.duration, load_cores) for _ in range(args.rounds)]
    finally:
        for p in pids.values():
            pin(p, sorted(os.sched_getaffinity(0)))


def read_cost_us(rg: Reelgate, db: Db, ids: list[str], lookups: int = 50_000) -> float | None:
    """CPU microseconds per primary-key read of a task row, in this process, on the server's SQLite file.

    The same read the GET route makes, without HTTP or the neighbours' noise: what the stored-task count costs
    by itself. Median of 3 repetitions; None on PostgreSQL (the read runs in a backend process there).
    """
    if db.kind != "sqlite":
        return None
    rng = random.Random(7)
    picks = [rng.choice(ids) for _ in range(lookups)]
    costs = []
    with contextlib.closing(sqlite3.connect(f"file:{rg.sqlite_path}?mode=ro", uri=True)) as conn:
        for _ in range(3):
            started = time.process_time()
            for task_id in picks:
                conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
            costs.append((time.process_time() - started) / lookups * 1e6)
    return round(median(costs), 2)


def _median_load(runs: list[Load]) -> Load:
    return Load(requests=sum(r.requests for r in runs), seconds=round(sum(r.seconds for r in runs), 2),
                rps=round(median([r.rps for r in runs]), 1), p50_ms=round(median([r.p50_ms for r in runs]), 2),
                p90_ms=round(median([r.p90_ms for r in runs]), 2), p99_ms=round(median([r.p99_ms for r in runs]), 2),
                max_ms=max(r.max_ms for r in runs), errors=sum(r.errors for r in runs), tool=runs[0].tool,
                other_cpu=max(r.other_cpu for r in runs))  # fmt: skip


def fill(rg: Reelgate, db: Db, total: int) -> tuple[list[str], float]:
    """Insert ``total`` tasks in batches; their ids and the seconds it took."""
    key_id, account_id = owner_ids(rg, db)
    started, ids = time.monotonic(), []
    for start in range(0, total, 20_000):
        batch = task_rows(account_id, key_id, start, min(20_000, total - start))
        insert(rg, db, batch)
        ids += [row[0] for row in batch]
    return ids, time.monotonic() - started


def measure(kind: str, total: int, args: argparse.Namespace) -> dict[str, Any]:
    """Two servers side by side, 100 and ``total`` stored tasks: GET alone in turn, then sharing one core."""
    with database(kind) as db_few, database(kind) as db_lots, reelgate(db_few) as few, reelgate(db_lots) as lots:
        few_ids, _ = fill(few, db_few, 100)
        time.sleep(2)
        rss_few_idle, rss_lots_empty = rss(few), rss(lots)
        lots_ids, insert_s = fill(lots, db_lots, total)
        time.sleep(2)
        rss_lots_idle = rss(lots)
        runs: dict[str, list[Load]] = {"few": [], "lots": []}
        servers = {"few": (few, few_ids), "lots": (lots, lots_ids)}
        for round_no in range(args.alone_rounds):
            # ABBA order: a neighbour's burst or a drift over the run weighs on both sides alike.
            for name in ("few", "lots") if round_no % 2 == 0 else ("lots", "few"):
                runs[name].append(get_load(*servers[name], args))
        windows = shared_windows(servers, args)
        rss_few_after, rss_lots_after = rss(few), rss(lots)
        anon_few, anon_lots = rss(few, "RssAnon"), rss(lots, "RssAnon")
        read_few, read_lots = read_cost_us(few, db_few, few_ids), read_cost_us(lots, db_lots, lots_ids)
    ratio = median([w.ratio for w in windows])
    return {"database": kind, "tasks": total, "insert_seconds": round(insert_s, 1),
            "rss_idle_mb": rss_few_idle, "rss_after_load_100_mb": rss_few_after,
            "rss_before_insert_mb": rss_lots_empty, "rss_idle_after_insert_mb": rss_lots_idle,
            "rss_after_load_all_mb": rss_lots_after, "anon_after_load_100_mb": anon_few,
            "anon_after_load_all_mb": anon_lots, "get_100": _median_load(runs["few"]),
            "get_all": _median_load(runs["lots"]), "alone_rounds": runs,
            "shared_100": _median_load([w.few for w in windows]), "shared_all": _median_load([w.lots for w in windows]),
            "cpu_us_100": round(median([w.few_cpu_us for w in windows]), 1),
            "cpu_us_all": round(median([w.lots_cpu_us for w in windows]), 1),
            "windows": [{"ratio": round(w.ratio, 3), "few_rps": w.few.rps, "lots_rps": w.lots.rps,
                         "few_cpu_us": w.few_cpu_us, "lots_cpu_us": w.lots_cpu_us} for w in windows],
            "ratio_min": round(min(w.ratio for w in windows), 3), "ratio_max": round(max(w.ratio for w in windows), 3),
            "read_us_100": read_few, "read_us_all": read_lots,
            "ratio": round(ratio, 3), **verdict(ratio, anon_few, anon_lots)}  # fmt: skip


def render(rows: list[dict[str, Any]]) -> str:
    headers = ["db", "stored tasks", "RSS MB", "anon RSS MB", "alone: GET req/s", "p50 ms", "p99 ms",
               "shared core: req/s", "CPU us/req", "ratio", "result", "PK read us"]  # fmt: skip
    out = []
    for r in rows:
        few, lots = r["get_100"], r["get_all"]
        out.append([r["database"], 100, f"{r['rss_idle_mb']} idle / {r['rss_after_load_100_mb']} after load",
                    f"{r['anon_after_load_100_mb']} after load", few.rps, few.p50_ms, few.p99_ms, r["shared_100"].rps,
                    r["cpu_us_100"], "1 (base)", "-", r["read_us_100"] or "-"])  # fmt: skip
        out.append([r["database"], r["tasks"], f"{r['rss_before_insert_mb']} empty / {r['rss_idle_after_insert_mb']} "
                    f"idle / {r['rss_after_load_all_mb']} after load",
                    f"{r['anon_after_load_all_mb']} after load ({r['anon_growth_mb']:+.1f}; <= +{ANON_GROWTH_MB:g})",
                    lots.rps, lots.p50_ms, lots.p99_ms, r["shared_all"].rps, r["cpu_us_all"],
                    f"{r['ratio']:.3f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}; >= {RATIO_TARGET:g})",
                    ("PASS" if r["passed"] else "FAIL" + ("" if r["ratio_ok"] else " ratio")
                     + ("" if r["rss_ok"] else " memory")), r["read_us_all"] or "-"])  # fmt: skip
    return table(headers, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=2, help="seconds per measured GET run (default 2)")
    parser.add_argument("--warmup", type=float, default=1, help="seconds of unmeasured load before each alone run")
    parser.add_argument("--rounds", type=int, default=20, help="windows with both servers on one core (default 20)")
    parser.add_argument("--alone-rounds", type=int, default=2, help="GET runs per server alone, ABBA (default 2)")
    parser.add_argument("--tasks", type=int, default=100_000, help="stored tasks in the second phase")
    parser.add_argument("--databases", default="sqlite", help="comma list: sqlite,postgres (default sqlite)")
    parser.add_argument("--quiet-wait", type=float, default=30)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    info = machine()
    rows = [measure(kind, args.tasks, args) for kind in args.databases.split(",")]
    print("\nmemory: RSS of reelgate serve (one process) and GET /v1/tasks/{random id} with 100 vs "
          f"{args.tasks:,} stored tasks")  # fmt: skip
    print(render(rows))
    passed = all(r["passed"] for r in rows)
    return report_verdict("memory", info, args, passed, rows)


if __name__ == "__main__":
    sys.exit(main())
