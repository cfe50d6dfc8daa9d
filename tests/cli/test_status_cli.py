"""Is the work getting done? ``Operators.health`` on both engines (heartbeat rows, the queue, stalled and why), a
process's heartbeat from start to clean stop, the gauges it feeds, and ``reelgate status`` through the real entry
point (its lines, its table, its exit codes)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

from client.live import REELGATE
from reelgate.health import Thresholds
from reelgate.liveness import PRUNE_AFTER, Heartbeat
from reelgate.metrics import BacklogGauges, Metrics
from reelgate.operators import Operators
from reelgate.store.processes import ProcessBeat
from reelgate.store.sql import Store
from store.factories import account, new_task

THRESHOLDS = Thresholds(liveness_seconds=30, stall_seconds=120)


def beat(process_id: str, kind: str, last_seen: float, in_hand: int = 0) -> ProcessBeat:
    return ProcessBeat(id=process_id, kind=kind, host="box-1", pid=4242, started=last_seen - 600,
                       last_seen=last_seen, concurrency=8, in_hand=in_hand)  # fmt: skip


async def waiting_task(store: Store, waited: float) -> str:
    """A pending task, due since ``waited`` seconds ago and claimed by nobody."""
    task = replace(new_task(await account(store)), now=time.time() - waited)
    record, _ = await store.tasks.create(task, None)
    return record.id


async def test_health_says_who_is_alive_and_why_the_backlog_stalls(store: Store) -> None:
    ops = Operators(store)
    empty = await ops.health(THRESHOLDS)
    assert empty.stalled and empty.reasons == ("no worker is running (none has heartbeated in the last hour)",)
    assert empty.warnings == ("no dispatcher is alive: callbacks are not being sent",)
    assert (empty.processes, empty.queue_depth, empty.oldest_waiting_seconds) == ((), 0, 0.0)

    now = time.time()
    await store.processes.beat(beat("worker:box-1:1:aa", "worker", now, in_hand=3), now - PRUNE_AFTER)
    await store.processes.beat(beat("dispatcher:box-1:2:bb", "dispatcher", now), now - PRUNE_AFTER)
    moving = await ops.health(THRESHOLDS)
    assert not moving.stalled and moving.reasons == () and moving.warnings == ()
    assert (moving.workers_alive, moving.dispatchers_alive) == (1, 1)
    worker = next(p for p in moving.processes if p.kind == "worker")
    assert (worker.id, worker.host, worker.pid, worker.in_hand, worker.concurrency, worker.alive) == (
        "worker:box-1:1:aa", "box-1", 4242, 3, 8, True)  # fmt: skip

    # The worker goes silent past the threshold and a task waits past the stall threshold: both reasons, in words.
    await store.processes.beat(beat("worker:box-1:1:aa", "worker", now - 45), now - PRUNE_AFTER)
    await waiting_task(store, 200)
    stalled = await ops.health(THRESHOLDS)
    assert stalled.stalled and stalled.workers_alive == 0 and stalled.queue_depth == 1
    assert stalled.reasons[0] == "no worker has heartbeated for 45 s (alive means within 30 s)"
    assert stalled.reasons[1].startswith("the oldest waiting task has waited 20") and "(more than 120 s)" in (
        stalled.reasons[1])  # fmt: skip
    assert [p.alive for p in stalled.processes] == [True, False]  # alive first
    assert stalled.oldest_waiting_seconds >= 200 and stalled.stall_seconds == 120

    # A row silent for longer than the prune age goes with the next beat of any process.
    await store.processes.beat(beat("worker:box-1:1:aa", "worker", now - PRUNE_AFTER - 5), now - PRUNE_AFTER)
    await store.processes.beat(beat("dispatcher:box-1:2:bb", "dispatcher", now), now - PRUNE_AFTER)
    assert [p.id for p in (await ops.health(THRESHOLDS)).processes] == ["dispatcher:box-1:2:bb"]


async def test_a_heartbeat_writes_its_row_at_once_and_forgets_it_on_a_clean_stop(store: Store) -> None:
    held = [2]
    heartbeat = Heartbeat(store.processes, process_id="worker:here:1:cc", kind="worker", concurrency=4,
                          in_hand=lambda: held[0], every=0.05)  # fmt: skip
    stop = asyncio.Event()
    heartbeat.start(stop)
    await asyncio.sleep(0.02)
    [row] = await store.processes.listed()
    assert (row.id, row.kind, row.in_hand, row.concurrency) == ("worker:here:1:cc", "worker", 2, 4)
    held[0] = 0
    await asyncio.sleep(0.15)
    [later] = await store.processes.listed()
    assert later.in_hand == 0 and later.last_seen > row.last_seen and later.started == row.started
    stop.set()
    await heartbeat.finish()
    assert await store.processes.listed() == []

    cut = Heartbeat(store.processes, process_id="worker:here:1:dd", kind="worker", concurrency=4,
                    in_hand=lambda: 0, every=0.05)  # fmt: skip
    cut.start(asyncio.Event())  # never set: the run that owns it ends otherwise (an error, a cancel)
    await asyncio.sleep(0.02)
    await cut.finish()
    assert await store.processes.listed() == []


async def test_the_gauges_follow_the_health(store: Store) -> None:
    metrics = Metrics()
    ops = Operators(store)
    gauges = BacklogGauges(metrics, lambda now: ops.health(THRESHOLDS))
    await gauges.update()
    page = metrics.render().decode()
    assert "reelgate_backlog_stalled 1.0" in page and 'reelgate_workers_alive{kind="worker"} 0.0' in page
    now = time.time()
    await store.processes.beat(beat("worker:box-1:1:aa", "worker", now), now - PRUNE_AFTER)
    fresh = BacklogGauges(metrics, lambda now: ops.health(THRESHOLDS))
    await fresh.update()
    page = metrics.render().decode()
    assert "reelgate_backlog_stalled 0.0" in page and 'reelgate_workers_alive{kind="worker"} 1.0' in page
    assert 'reelgate_workers_alive{kind="dispatcher"} 0.0' in page


def _status(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "REELGATE_DATABASE_URL": f"sqlite:///{db}", "REELGATE_DATA_DIR": str(db.parent),
           "COLUMNS": "200", "REELGATE_LOG_LEVEL": "WARNING"}  # fmt: skip
    return subprocess.run([REELGATE, "status", *args], env=env, capture_output=True, text=True, timeout=60)


async def _prepare(db: Path, *beats: ProcessBeat, waited: float | None = None) -> None:
    store = await Store.open(f"sqlite:///{db}")
    try:
        for row in beats:
            await store.processes.beat(row, time.time() - PRUNE_AFTER)
        if waited is not None:
            await waiting_task(store, waited)
    finally:
        await store.close()


def test_reelgate_status_lines_table_and_exit_codes(tmp_path: Path, sqlite_template: Path) -> None:
    db = tmp_path / "reelgate.db"
    shutil.copy(sqlite_template, db)
    now = time.time()
    asyncio.run(_prepare(db, beat("worker:box-1:1:aa", "worker", now, 3), beat("dispatcher:box-1:2:bb", "dispatcher",
                                                                              now)))  # fmt: skip
    ok = _status(db)
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[:3] == ["ok: the backlog is moving", "queue: no task waiting",
                         "alive: 1 worker(s), 1 dispatcher(s) (heartbeat within 30 s)"]  # fmt: skip
    worker_row = next(line for line in lines if line.startswith("worker "))
    for shown in ("alive", " s ago", "3/8", "worker:box-1:1:aa", "box-1"):  # seen as of the command's start
        assert shown in worker_row, worker_row

    # A fresh clock: the first command may take seconds on a loaded machine, and the silence is counted from now.
    asyncio.run(_prepare(db, beat("worker:box-1:1:aa", "worker", time.time() - 90), waited=300))
    stalled = _status(db)
    assert stalled.returncode == 3, stalled.stderr
    lines = stalled.stdout.splitlines()
    silence = re.match(r"STALLED: no worker has heartbeated for (\d+) s \(alive means within 30 s\)", lines[0])
    assert silence is not None and 90 <= int(silence.group(1)) < 150, lines[0]
    assert lines[1].startswith("STALLED: the oldest waiting task has waited 30")
    assert lines[2].startswith("queue: 1 task waiting, the oldest for 5 min (stalled past 120 s)")
    assert any(line.startswith("worker ") and "SILENT" in line and " s ago" in line for line in lines), lines
