"""Two real ``reelgate worker`` processes against one fake Kling account whose channel cap is 2: never more than 2
upstream tasks in flight, every task completes, each was created once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from fakes.kling_server import FakeKling
from kling.harness import AK, SK, channel, write_config
from procs import Proc, create_key, free_port, reelgate_env, serve

TASKS = 8


def test_two_worker_processes_hold_the_channel_cap(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Each task stays in flight upstream for about a second; the account's own cap at Kling is 2 too.
    with FakeKling(access_keys={AK: SK}, polls_per_step=None, seconds_per_step=0.4, concurrency=2) as fake:
        config = write_config(tmp_path / "kling.json", [channel("main", fake, concurrency=2)])
        env = reelgate_env(tmp_path / "data", db_url, REELGATE_KLING_CONFIG=config, REELGATE_WORKER_CONCURRENCY="2")
        key = create_key(env, credits=2000)
        headers = {"Authorization": f"Bearer {key}"}
        api = serve(env, port, tmp_path / "serve.log", "--no-tasks")
        verbose = {**env, "REELGATE_LOG_LEVEL": "INFO"}  # each create is logged: both processes must have made some
        workers = [Proc(verbose, "worker", "--no-dispatch", log=tmp_path / f"w{i}.log") for i in range(2)]
        try:
            # Both claiming before the first submit: on a loaded machine one could start after the other had made
            # every create, and the test is about two processes sharing the cap.
            started = time.monotonic() + 30
            while not all("worker started" in (tmp_path / f"w{i}.log").read_text() for i in range(2)):
                assert time.monotonic() < started, "the worker processes did not start"
                time.sleep(0.1)
            body = {"model": "kling-v3-text-to-video", "prompt": "tide", "duration": 3}
            ids = []
            for _ in range(TASKS):
                answer = httpx.post(f"{base}/v1/videos/generations", json=body, headers=headers, timeout=10)
                assert answer.status_code == 200, answer.text
                ids.append(answer.json()["id"])
            deadline = time.monotonic() + 90
            while True:
                tasks = [httpx.get(f"{base}/v1/tasks/{i}", headers=headers, timeout=5).json() for i in ids]
                if all(t["status"] in ("completed", "failed") for t in tasks):
                    break
                assert time.monotonic() < deadline, [t["status"] for t in tasks]
                time.sleep(0.2)
        finally:
            for proc in (*workers, api):
                proc.kill()
    assert [t["status"] for t in tasks] == ["completed"] * TASKS, tasks
    assert fake.max_in_flight(AK) == 2 and fake.cap_refusals(AK) == 0  # reached, never passed: no 1303
    assert len(fake.video_tasks()) == TASKS and all(fake.video_create_count(i) == 1 for i in ids)
    logs = [(tmp_path / f"w{i}.log").read_text() for i in range(2)]
    assert all("Traceback" not in log and "Kling task created" in log for log in logs), logs
