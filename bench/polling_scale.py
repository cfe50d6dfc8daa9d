"""Upstream polling scale: N open Kling tasks polled by ONE ``reelgate worker`` process against the fake Kling server.

The issue: 10,000 open tasks on the fake Kling server with one worker process, memory under 300 MB and every task
polled within twice its scheduled interval (the best-known peer polls one task per second per account, so a pass
over 10,000 tasks takes 10,000 s, almost three hours).

What runs (everything on 127.0.0.1, every loop bounded in time):

* The fake Kling server (tests/fakes/kling_server.py) in this process, with no status schedule: every seeded task
  stays ``processing`` for the whole run. The stock fake finds a task by a linear scan over all its tasks (fine for
  tests, ~10,000 comparisons per poll here), so this bench subclasses it with dict look-ups; answers, auth (a JWT
  verified per request) and the request log are the stock fake's.
* N tasks are submitted through Reelgate's real service layer (``TaskService.submit``: validation, pricing, credit
  reservation, ledger rows) with http(s) image URLs, so the submit skips media decoding. The provider's media
  pre-flight and the create call are NOT exercised: each task is then moved straight to the provider's ``polling``
  phase by one SQL update (state ``{"phase": "polling", "kling_task_id", "polls", "next_delay", ...}``, status
  ``processing``) and the matching task is registered in the fake with ``external_task_id`` = our task id.
  Honest because only polling is measured; pre-flight and create are covered by bench/element_latency.py and the
  tests.
* The population is in steady state, not a thundering herd: task ages are uniform in [0, --max-age) s, as if tasks
  had been created at a constant rate. For each age the provider's documented schedule (poll_initial 1 s,
  poll_factor 2, poll_max 30 s: polls after 1, 2, 4, 8, 16, 30, 30 ... s) gives how many polls were already made
  (state ``polls``), when the last one was and when the next is due (``run_after``). With --max-age 600 about 5 % of
  the tasks are still in the 1-16 s ramp; the rest poll every 30 s (+ up to 10 % jitter): ~10,000/31.5 = 317 polls/s.
* ONE ``reelgate worker`` process (SQLite in a temp REELGATE_DATA_DIR, callback dispatcher on as by default),
  started before the schedule exists: only one extra "canary" task is due, and once the fake sees the canary's poll
  the schedule is anchored at T0 = now + 1 s (the canary is left out of every figure). Every second the worker's
  RSS (VmRSS), CPU time and its event loop thread's time on a CPU and waiting for one (schedstat) are read from
  /proc: on a shared machine this tells "the worker is slow" from "the worker did not get a CPU". After
  --duration s it gets SIGTERM.

How a poll is judged: from the fake's request log (GET .../advanced-custom-elements/<kling task id>, time of
arrival) each task's polls are sorted; the gap between two consecutive polls is divided by the nominal back-off
delay the provider computed after the first of the two (min(poll_max, poll_initial * poll_factor ** polls), no
jitter, so a ratio up to 1.1 is jitter alone). The first poll of each task in the run is the warm-up: its
"previous poll" is synthetic (before the worker started), so it is reported separately (lateness against its
``run_after``) and does not count towards PASS/FAIL. A task whose next poll had not happened by the end of the run
although more than 2x its interval had passed counts as a late poll too (a missed poll leaves no gap to measure).
The saved state is cross-checked afterwards: ``polls`` in each row must equal the seeded count plus the polls the
fake saw (a poll in flight at SIGTERM may be one off).

PASS: max RSS < 300 MB, judged on at least one RSS sample for every two seconds of the window (a run whose
worker could not be sampled does not pass), and no poll (after the first of each task) later than 2x its interval.

    .venv/bin/python bench/polling_scale.py                      # 10,000 tasks, 150 s
    .venv/bin/python bench/polling_scale.py --tasks 2000 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchkit import is_problem_line, machine, report_verdict  # noqa: E402
from tests.fakes.kling_server import ELEMENTS_PATH, FakeKling, FakeTask  # noqa: E402

from reelgate.auth import hash_key, key_prefix, new_api_key  # noqa: E402
from reelgate.callbacks import new_secret  # noqa: E402
from reelgate.cli.common import migrate_db  # noqa: E402
from reelgate.config import Settings  # noqa: E402
from reelgate.runtime import build_runtime  # noqa: E402
from reelgate.service import Submission  # noqa: E402
from reelgate.store.accounts import KeyOwner  # noqa: E402

MODEL = "kling-custom-element"
AK = "ak-bench-polling-0123456789"
SK = "sk-bench-polling-SECRET-0123456789abcdef"
CHANNEL = "bench"
RSS_LIMIT_MB = 300.0
LATE_FACTOR = 2.0
PEER_POLLS_PER_S = 1.0
SUBMIT_BATCH = 500
WORKER_BIN = Path(sys.executable).parent / "reelgate"


@dataclass(frozen=True)
class Backoff:
    """The provider's polling schedule (docs/kling.md; KlingProvider._next_poll), jitter left out."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 30.0

    def delay(self, polls: int) -> float:
        """The delay the provider schedules after a poll made with ``polls`` earlier polls in its state."""
        if self.initial * self.factor ** min(polls, 64) >= self.cap:
            return self.cap
        return float(self.initial * self.factor**polls)

    def seed(self, age: float) -> tuple[int, float, float]:
        """For a task created ``age`` s ago: (polls made so far, last poll and next poll, in s relative to now)."""
        polls, last = 0, 0.0  # the create answer is judged at once: "poll" 0 at age 0
        while True:
            nxt = last + self.delay(polls)
            polls += 1
            if nxt > age:
                return polls, last - age, nxt - age
            last = nxt


@dataclass
class Seeded:
    task_id: str
    kling_id: str
    polls: int  # state "polls" as seeded
    last: float  # absolute time of the synthetic previous poll
    due: float  # absolute run_after


@dataclass
class Sampler:
    """Every second, on a thread until stopped: VmRSS (MB), the process's CPU seconds, and its main thread's
    (the event loop's) seconds on a CPU and seconds runnable but waiting for one (/proc/<pid>/schedstat)."""

    pid: int
    rss: list[float] = field(default_factory=list)
    cpu: list[tuple[float, float, float, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self.stop.wait(1.0):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
                stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
                sched = Path(f"/proc/{self.pid}/schedstat").read_text().split()
            except OSError:
                return
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    self.rss.append(int(line.split()[1]) / 1024)
            cpu = (int(stat[11]) + int(stat[12])) / tick
            self.cpu.append((time.time(), cpu, int(sched[0]) / 1e9, int(sched[1]) / 1e9))

    def shares(self, start: float, end: float) -> tuple[float, float, float]:
        """Between two times (nearest samples), as fractions of one core / of the time: the process's CPU,
        the event loop thread on a CPU, the event loop thread waiting for a CPU."""
        inside = [row for row in self.cpu if start <= row[0] <= end]
        if len(inside) < 2:
            return 0.0, 0.0, 0.0
        first, last = inside[0], inside[-1]
        span = max(last[0] - first[0], 1e-9)
        return (last[1] - first[1]) / span, (last[2] - first[2]) / span, (last[3] - first[3]) / span


class IndexedFake(FakeKling):
    """The stock fake with dict look-ups by task id and external id (the stock fake scans its task list)."""

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._by_id: dict[str, FakeTask] = {}
            self._by_external: dict[str, FakeTask] = {}

    def _find(self, task_or_external_id: str) -> FakeTask | None:
        return self._by_id.get(task_or_external_id) or self._by_external.get(task_or_external_id)

    def _find_external(self, external_task_id: str) -> FakeTask | None:
        return self._by_external.get(external_task_id)

    def _new_task(self, body: dict[str, Any]) -> FakeTask:
        task = super()._new_task(body)
        self._by_id[task.task_id] = task
        if task.external_task_id:
            self._by_external[task.external_task_id] = task
        return task

    def register_processing(self, bodies: list[dict[str, Any]]) -> list[str]:
        """Store one task per create body, already ``processing``; returns their Kling task ids."""
        with self._lock:
            tasks = [self._new_task(body) for body in bodies]
            for task in tasks:
                task.step = 1
            return [t.task_id for t in tasks]


def model_params(fake_url: str) -> dict[str, Any]:
    """Valid params whose media are URLs on the fake (never fetched: the tasks start past pre-flight)."""
    return {
        "element_name": "Red fox",
        "element_description": "A red fox plush toy",
        "reference_type": "image_refer",
        "element_image_list": {
            "frontal_image": f"{fake_url}/media/front.jpg",
            "refer_images": [{"image_url": f"{fake_url}/media/side.jpg"}],
        },
    }


def write_kling_config(path: Path, fake_url: str, backoff: Backoff, concurrency: int, rate: float) -> None:
    # ``concurrency`` is the account's cap on tasks in flight (shared by every process), not what this measures;
    # ``request_concurrency`` is the per-process request limit this benchmark varies.
    channel = {"name": CHANNEL, "base_url": fake_url, "access_key": AK, "secret_key": SK,
               "request_concurrency": concurrency, "rate_limit": rate, "concurrency": 100_000}  # fmt: skip
    config = {"channels": [channel], "poll_initial": backoff.initial, "poll_factor": backoff.factor,
              "poll_max": backoff.cap}  # fmt: skip
    path.write_text(json.dumps(config))
    path.chmod(0o600)


async def submit_tasks(settings: Settings, count: int, params: dict[str, Any]) -> list[str]:
    """``count`` tasks through TaskService.submit (reservation and ledger included), SUBMIT_BATCH at a time."""
    rt = build_runtime(settings, worker=False, dispatcher=False)
    await rt.start()
    try:
        account = await rt.store.accounts.ensure_account("bench", None, new_secret())
        await rt.store.accounts.grant(account, count * 10_000, "polling bench")
        key = new_api_key()
        key_id = await rt.store.accounts.add_key(account, hash_key(key), key_prefix(key), "bench")
        owner = KeyOwner(key_id, account, "default", False, None, None, count)
        ids: list[str] = []
        body = {"model": MODEL, "model_params": params}
        while len(ids) < count:
            batch = min(SUBMIT_BATCH, count - len(ids))
            done = await asyncio.gather(*(rt.service.submit(Submission(body, owner)) for _ in range(batch)))
            ids.extend(t.id for t in done)
        return ids
    finally:
        await rt.close()


def create_body(task_id: str, params: dict[str, Any]) -> dict[str, Any]:
    return {**params, "external_task_id": task_id}


def polling_state(seeded: Seeded, backoff: Backoff) -> str:
    state = {"phase": "polling", "channel": CHANNEL, "kling_task_id": seeded.kling_id, "polls": seeded.polls,
             "next_delay": backoff.delay(seeded.polls), "kling_status": "processing", "missing": 0,
             "media": [{"field": "frontal_image", "kind": "image", "name": "0" * 64 + ".jpg", "thumbnail": None},
                       {"field": "refer_images[0]", "kind": "image", "name": "1" * 64 + ".jpg", "thumbnail": None}]}  # fmt: skip
    return json.dumps(state)


def park_as_polling(db: Path, seeded: list[Seeded], backoff: Backoff, canary: Seeded) -> None:
    """Move every task to phase ``polling`` (status processing, progress 90), not yet due; the canary due now."""
    with sqlite3.connect(db, timeout=30) as conn:
        conn.executemany(
            "UPDATE tasks SET status = 'processing', progress = 90, cancellable = 0, attempts = :n, state = :s, "
            "run_after = :t, deadline = 1e12 WHERE id = :id",
            [{"n": s.polls, "s": polling_state(s, backoff), "id": s.task_id, "t": 0.0 if s is canary else 1e12}
             for s in [*seeded, canary]],
        )  # fmt: skip


def anchor(db: Path, seeded: list[Seeded]) -> None:
    """Make the schedule real: each task's run_after from the times computed for it."""
    with sqlite3.connect(db, timeout=30) as conn:
        conn.executemany("UPDATE tasks SET run_after = :t WHERE id = :id",
                         [{"t": s.due, "id": s.task_id} for s in seeded])  # fmt: skip


def start_worker(env: dict[str, str], concurrency: int, log: Path, profile: str) -> subprocess.Popen[bytes]:
    # One process: the figures are one worker's RSS and CPU (by default worker starts one process per CPU).
    command = [str(WORKER_BIN), "worker", "--processes", "1", "--concurrency", str(concurrency)]
    if profile:  # cProfile slows the worker down: use it to see where the time goes, not for the figures
        command = [sys.executable, "-m", "cProfile", "-o", profile, *command]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def wait_polling(proc: subprocess.Popen[bytes], fake: FakeKling, log: Path, timeout: float = 60.0) -> None:
    """Until the fake has seen the worker's first poll: the canary's (the only task due before T0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"reelgate worker exited early:\n{log.read_text()[-3000:]}")
        if fake.requests("get"):
            return
        time.sleep(0.1)
    raise SystemExit(f"reelgate worker did not start within {timeout:g} s:\n{log.read_text()[-3000:]}")


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Analysis:
    polls: int = 0
    ratios: list[float] = field(default_factory=list)  # gaps after the first poll of each task
    first_late: list[float] = field(default_factory=list)  # s after run_after, first poll of each task
    late: int = 0  # gaps > LATE_FACTOR x interval
    overdue_at_end: int = 0  # next poll not made though > LATE_FACTOR x interval had passed
    never_polled: int = 0
    full_pass: float = 0.0  # s from T0 until every task had been polled once
    cycle_max: float = 0.0  # the longest gap between two polls at the cap


def arrivals(fake: FakeKling, by_kling: dict[str, Seeded], start: float, end: float) -> dict[str, list[float]]:
    prefix = ELEMENTS_PATH + "/"
    seen: dict[str, list[float]] = defaultdict(list)
    for req in fake.requests("get"):
        if start <= req.time <= end and req.path.startswith(prefix):
            task = by_kling.get(req.path[len(prefix) :])
            if task is not None:
                seen[task.task_id].append(req.time)
    return seen


def judge_task(a: Analysis, s: Seeded, times: list[float], backoff: Backoff, t0: float, end: float) -> None:
    if not times:
        a.never_polled += 1
        a.overdue_at_end += end - s.last > LATE_FACTOR * backoff.delay(s.polls - 1)
        a.full_pass = float("inf")
        return
    times.sort()
    a.polls += len(times)
    a.first_late.append(times[0] - s.due)
    a.full_pass = max(a.full_pass, times[0] - t0)
    for i in range(1, len(times)):
        interval = backoff.delay(s.polls + i - 1)
        ratio = (times[i] - times[i - 1]) / interval
        a.ratios.append(ratio)
        a.late += ratio > LATE_FACTOR
        if interval >= backoff.cap:
            a.cycle_max = max(a.cycle_max, times[i] - times[i - 1])
    a.overdue_at_end += end - times[-1] > LATE_FACTOR * backoff.delay(s.polls + len(times) - 1)


def analyse(fake: FakeKling, seeded: list[Seeded], backoff: Backoff, t0: float, end: float) -> Analysis:
    seen = arrivals(fake, {s.kling_id: s for s in seeded}, t0 - 1.0, end)
    a = Analysis()
    for s in seeded:
        judge_task(a, s, seen.get(s.task_id, []), backoff, t0, end)
    return a


def state_check(db: Path, seeded: list[Seeded], seen_polls: dict[str, int]) -> tuple[int, int, int]:
    """(rows whose saved ``polls`` = seeded + polls seen, rows one behind, others)."""
    with sqlite3.connect(db, timeout=30) as conn:
        rows = dict(conn.execute("SELECT id, state FROM tasks").fetchall())
    exact = behind = other = 0
    for s in seeded:
        saved = int(json.loads(rows[s.task_id]).get("polls", -1))
        expected = s.polls + seen_polls.get(s.task_id, 0)
        exact += saved == expected
        behind += saved == expected - 1
        other += saved not in (expected, expected - 1)
    return exact, behind, other


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def plan(ids: list[str], kling_ids: list[str], backoff: Backoff, max_age: float, rng: random.Random) -> list[Seeded]:
    """Relative schedule per task (absolute once anchored): ages uniform in [0, max_age)."""
    out = []
    for task_id, kling_id in zip(ids, kling_ids, strict=True):
        polls, last, due = backoff.seed(rng.uniform(0, max_age))
        out.append(Seeded(task_id, kling_id, polls, last, due))
    return out


def worker_env(data: Path, config: Path, poll_interval: float, log_level: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    env.update(REELGATE_DATA_DIR=str(data), REELGATE_PROVIDERS=f"{MODEL}=kling", REELGATE_KLING_CONFIG=str(config),
               REELGATE_ALLOW_PRIVATE_NETWORKS="1", REELGATE_WORKER_POLL_INTERVAL=str(poll_interval),
               REELGATE_LOG_LEVEL=log_level, REELGATE_TASK_DEADLINE="86400")  # fmt: skip
    return env


@dataclass
class Run:
    args: argparse.Namespace
    backoff: Backoff
    tasks: int = 0
    setup_s: float = 0.0
    t0: float = 0.0
    end: float = 0.0
    sampler: Sampler | None = None
    analysis: Analysis = field(default_factory=Analysis)
    check: tuple[int, int, int] = (0, 0, 0)
    claims_rows: int = 0
    claims_mb: float = 0.0  # task_claims and its index at the end
    bench_cpu: float = 0.0  # share of one core used by this process (the fake server, mostly)
    load: list[float] = field(default_factory=list)  # 1-minute load average at T0 and at the end
    log_counts: dict[str, int] = field(default_factory=dict)
    log_problems: list[str] = field(default_factory=list)


def measure(args: argparse.Namespace, fake: IndexedFake, tmp: Path) -> Run:
    run = Run(args, Backoff())
    started = time.monotonic()
    settings = Settings(data_dir=tmp / "data", allow_private_networks=True, providers={MODEL: "kling"},
                        kling_config=str(tmp / "kling.json"), task_deadline=86400.0, max_in_flight=args.tasks)  # fmt: skip
    channel_concurrency = args.channel_concurrency or args.concurrency
    write_kling_config(tmp / "kling.json", fake.base_url, run.backoff, channel_concurrency, args.rate_limit)
    migrate_db(settings)
    params = model_params(fake.base_url)
    ids = asyncio.run(submit_tasks(settings, args.tasks + 1, params))
    kling_ids = fake.register_processing([create_body(i, params) for i in ids])
    seeded = plan(ids, kling_ids, run.backoff, args.max_age, random.Random(args.seed))
    canary = seeded.pop()  # due at once: its first poll tells the worker is up; left out of the figures
    db = tmp / "data" / "reelgate.db"
    park_as_polling(db, seeded, run.backoff, canary)
    run.tasks, run.setup_s = len(seeded), time.monotonic() - started
    log = tmp / "worker.log"
    env = worker_env(tmp / "data", tmp / "kling.json", args.poll_interval, args.log_level)
    proc = start_worker(env, args.concurrency, log, args.profile)
    run.sampler = Sampler(proc.pid)
    sampling = threading.Thread(target=run.sampler.run, name="rss-sampler", daemon=True)
    sampling.start()
    try:
        wait_polling(proc, fake, log)
        claims_before = _count(db, "task_claims")
        run.t0 = time.time() + 1.0
        for s in seeded:
            s.last, s.due = run.t0 + s.last, run.t0 + s.due
        anchor(db, seeded)
        run.load.append(os.getloadavg()[0])
        own_cpu = time.process_time()
        while time.time() < run.t0 + args.duration and proc.poll() is None:
            time.sleep(0.2)
        run.end = time.time()
        run.bench_cpu = (time.process_time() - own_cpu) / max(run.end - run.t0, 1e-9)
        run.load.append(os.getloadavg()[0])
    finally:
        stop_worker(proc)
        run.sampler.stop.set()
        sampling.join(5)
    run.analysis = analyse(fake, seeded, run.backoff, run.t0, run.end)
    seen = arrivals(fake, {s.kling_id: s for s in seeded}, run.t0 - 1.0, time.time())
    run.check = state_check(db, seeded, {k: len(v) for k, v in seen.items()})
    run.claims_rows = _count(db, "task_claims") - claims_before
    run.claims_mb = _table_mb(db, "task_claims")
    run.log_counts, run.log_problems = _log_summary(log)
    return run


def _table_mb(db: Path, table: str) -> float:
    """Pages used by a table and its indexes (SQLite's dbstat; 0 when this SQLite lacks it)."""
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            row = conn.execute("SELECT SUM(pgsize) FROM dbstat WHERE name = ? OR name IN "
                               "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?)",
                               (table, table)).fetchone()  # fmt: skip
        except sqlite3.OperationalError:
            return 0.0
    return float(row[0] or 0) / 2**20


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _log_summary(log: Path) -> tuple[dict[str, int], list[str]]:
    """Worker log lines by logger and level, and the first warnings and errors (the dev-switch warning aside)."""
    counts: dict[str, int] = defaultdict(int)
    problems: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            counts["(not JSON)"] += 1
            continue
        level = str(entry.get("level", "?"))
        counts[f"{entry.get('logger', '?')}/{level}"] += 1
        if is_problem_line(line) and len(problems) < 5:
            problems.append(line[:400])
    return dict(counts), problems


def rss_ok(samples: list[float], window: float) -> bool:
    """Max RSS under the limit, on enough samples: the sampler reads one a second from the worker's start, so fewer
    than one for every two seconds of the window means the worker was gone or unreadable, not small."""
    return len(samples) >= max(1.0, window / 2) and max(samples) < RSS_LIMIT_MB


def figures(run: Run) -> dict[str, Any]:
    """What run_all's summary and ``--json-out`` carry: the judged figures and the verdict."""
    a = run.analysis
    rss = run.sampler.rss if run.sampler else []
    window = run.end - run.t0
    return {"tasks": run.tasks, "window_s": round(window, 1), "polls": a.polls,
            "polls_per_s": round(a.polls / window, 1) if window > 0 else 0.0, "max_rss_mb": round(max(rss, default=0.0), 1),
            "gap_p50": round(pct(a.ratios, 0.5), 3), "gap_p99": round(pct(a.ratios, 0.99), 3),
            "gap_max": round(max(a.ratios, default=0.0), 3), "late": a.late + a.overdue_at_end,
            "full_pass_s": round(a.full_pass, 1), "never_polled": a.never_polled, "rss_samples": len(rss),
            "passed": rss_ok(rss, window) and a.late + a.overdue_at_end == 0}  # fmt: skip


def report(run: Run) -> bool:
    a, args, b = run.analysis, run.args, run.backoff
    window = run.end - run.t0
    rss = run.sampler.rss if run.sampler else []
    max_rss = max(rss, default=0.0)
    cpu, loop_on, loop_waiting = run.sampler.shares(run.t0, run.end) if run.sampler else (0.0, 0.0, 0.0)
    rate = a.polls / window if window > 0 else 0.0
    judged = figures(run)  # the verdict, as run_all reads it
    late_total, passed = judged["late"], judged["passed"]
    peer = run.tasks / PEER_POLLS_PER_S
    here = max(a.full_pass, a.cycle_max)  # a pass = the longest any task waited between polls in this run
    passed_once = (
        f"every task polled at least once within {a.full_pass:.1f} s of T0"
        if a.never_polled == 0
        else f"{a.never_polled} tasks not polled in the window ({a.overdue_at_end} of all tasks overdue at the end)"
    )
    lines = [
        f"setup: {run.tasks} tasks submitted through TaskService.submit, moved to phase 'polling' and registered in "
        f"the fake as 'processing' in {run.setup_s:.1f} s (pre-flight and create skipped; ages uniform in "
        f"[0, {args.max_age:g}) s)",
        f"worker: one `reelgate worker --concurrency {args.concurrency}` (SQLite, dispatcher on), "
        f"REELGATE_WORKER_POLL_INTERVAL={args.poll_interval:g}, REELGATE_LOG_LEVEL={args.log_level}; "
        f"channel concurrency {args.channel_concurrency or args.concurrency}, "
        f"rate_limit {args.rate_limit:g}/s; back-off {b.initial:g} s x{b.factor:g} capped at {b.cap:g} s (+<=10 % jitter)",
        f"machine:              {os.cpu_count()} cores, 1-min load average {run.load[0]:.1f} at start, "
        f"{run.load[-1]:.1f} at the end (other processes included); this process (the fake) used "
        f"{run.bench_cpu * 100:.0f} % of one core",
        f"tasks:                {run.tasks}",
        f"measured window:      {window:.1f} s",
        f"polls done:           {a.polls}  ({rate:.1f} polls/s; worker CPU {cpu * 100:.0f} % of one core, "
        f"{cpu * window / max(a.polls, 1) * 1000:.2f} ms per poll)",
        f"event loop thread:    on a CPU {loop_on * 100:.0f} % of the time, runnable but waiting for a CPU "
        f"{loop_waiting * 100:.0f} %, idle or blocked {max(0.0, 1 - loop_on - loop_waiting) * 100:.0f} %",
        f"capacity estimate:    at {cpu * window / max(a.polls, 1) * 1000:.2f} ms of worker CPU per poll one core "
        f"polls {run.tasks} tasks in {run.tasks * cpu * window / max(a.polls, 1):.1f} s (if nothing else needs it)",
        f"max RSS:              {max_rss:.1f} MB  (median {statistics.median(rss or [0]):.1f} MB, {len(rss)} samples)",
        f"gap / interval:       p50 {pct(a.ratios, 0.5):.3f}  p99 {pct(a.ratios, 0.99):.3f}  "
        f"max {max(a.ratios, default=float('nan')):.3f}  ({len(a.ratios)} gaps; the first poll of each task excluded)",
        f"polls later than {LATE_FACTOR:g}x:   {a.late} measured + {a.overdue_at_end} overdue at the end "
        f"(tasks never polled: {a.never_polled}, counted late only when overdue)",
        f"first poll (warm-up): late vs run_after p50 {pct(a.first_late, 0.5):.3f} s  p99 "
        f"{pct(a.first_late, 0.99):.3f} s  max {max(a.first_late, default=float('nan')):.3f} s",
        f"saved state check:    {run.check[0]} rows polls = seeded + seen, {run.check[1]} one behind "
        f"(in flight at SIGTERM), {run.check[2]} other",
        f"task_claims:          +{run.claims_rows} rows during the run, {run.claims_rows / max(a.polls, 1):.2f} per "
        f"poll (one per claim, never purged); table + index now {run.claims_mb:.1f} MB",
        f"full pass:            {passed_once}; longest gap between two polls at the {b.cap:g} s cap "
        f"{a.cycle_max:.1f} s",
        f"peer (1 poll/s):      one pass over {run.tasks} tasks takes {peer:,.0f} s ({peer / 3600:.2f} h); here "
        + (f"{here:.1f} s, {peer / here:,.0f}x faster" if here < float("inf") else "not measured (window too short)"),
        f"result:               {'PASS' if passed else 'FAIL'} (RSS < {RSS_LIMIT_MB:g} MB: "
        f"{'yes' if rss_ok(rss, window) else 'no' if rss else 'not measured'}; every poll after the first within "
        f"{LATE_FACTOR:g}x: "
        f"{'yes' if late_total == 0 else 'no'})",
    ]
    print("\n".join(lines))
    top = sorted(run.log_counts.items(), key=lambda kv: -kv[1])[:4]
    print("worker log lines:     " + ", ".join(f"{k} {v}" for k, v in top))
    if run.log_problems:
        print("worker warnings/errors (first 5):\n" + "\n".join(run.log_problems))
    return bool(passed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=150.0, help="measured seconds (after the worker is up)")
    parser.add_argument("--concurrency", type=int, default=64, help="worker --concurrency and channel concurrency")
    parser.add_argument("--channel-concurrency", type=int, default=0, help="Kling channel concurrency (0: same)")
    parser.add_argument("--log-level", default="INFO", help="the worker's REELGATE_LOG_LEVEL (INFO is the default)")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="REELGATE_WORKER_POLL_INTERVAL")
    parser.add_argument("--rate-limit", type=float, default=2000.0, help="channel rate_limit, requests/s")
    parser.add_argument("--max-age", type=float, default=600.0, help="task ages are uniform in [0, max-age) s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", default="", help="run the worker under cProfile, writing the stats here")
    parser.add_argument("--json-out", default=None, help="also write the judged figures here (run_all reads them)")
    args = parser.parse_args()
    if not 1 <= args.tasks <= 50_000 or not 5 <= args.duration <= 240:
        parser.error("--tasks must be 1-50000 and --duration 5-240 s (the whole run stays under 5 minutes)")
    fake = IndexedFake(access_keys={AK: SK}, polls_per_step=None, seconds_per_step=None)  # tasks never move on
    with tempfile.TemporaryDirectory(prefix="reelgate-polling-") as tmp, fake:
        run = measure(args, fake, Path(tmp))
        return report_verdict("polling_scale", machine(), args, report(run), [figures(run)])


if __name__ == "__main__":
    raise SystemExit(main())
