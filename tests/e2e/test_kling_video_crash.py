"""kill -9 of a real ``reelgate serve`` while it streams a Kling video result: after the restart the task completes
from the same upstream task (one create), is charged once, and its result plays for the requested length."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import av
import httpx

from fakes.kling_server import FakeKling
from fakes.kling_video import clip
from kling.harness import AK, SK, channel, write_config
from procs import create_key, free_port, reelgate_env, serve
from reelgate.store.sql import Store


def _until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)


async def _phase(db_url: str, task_id: str) -> str | None:
    store = await Store.open(db_url, pool_size=1)
    try:
        row = await store.db.read(lambda c: c.one("SELECT state FROM tasks WHERE id = :id", {"id": task_id}))
        return None if row is None else json.loads(row["state"] or "{}").get("phase")
    finally:
        await store.close()


async def _ledger(db_url: str) -> dict[str, int]:
    store = await Store.open(db_url, pool_size=2)
    try:
        acct = await store.accounts.account_id("acme")
        assert acct is not None
        return await store.accounts.ledger_sums(acct)
    finally:
        await store.close()


def test_worker_killed_mid_download_completes_after_restart_with_one_create(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with FakeKling(access_keys={AK: SK}) as fake:
        # About 4 s to stream the 3 s result: long enough to kill the process in the middle of it.
        fake.trickle_next_result(bytes_per_second=max(256, len(clip(3)) // 4))
        config = write_config(tmp_path / "kling.json", [channel("main", fake)], retry_initial=0.2)
        env = reelgate_env(tmp_path / "data", db_url, REELGATE_LEASE_SECONDS="1.5", REELGATE_KLING_CONFIG=config,
                           REELGATE_PUBLIC_BASE_URL=base)  # fmt: skip
        key = create_key(env, credits=200)
        headers = {"Authorization": f"Bearer {key}"}
        server = serve(env, port, tmp_path / "serve.log")
        try:
            body = {"model": "kling-v3-text-to-video", "prompt": "surf at dawn", "duration": 3}
            answer = httpx.post(f"{base}/v1/videos/generations", json=body, headers=headers, timeout=10)
            assert answer.status_code == 200, answer.text
            task_id = answer.json()["id"]
            _until(lambda: fake.requests("video_download"), 30, "the result download")
            time.sleep(0.5)
            assert asyncio.run(_phase(db_url, task_id)) == "downloading"
            server.kill()  # mid-stream: nothing gets to clean up
            server = serve(env, port, tmp_path / "serve2.log")

            def finished() -> bool:
                got = httpx.get(f"{base}/v1/tasks/{task_id}", headers=headers, timeout=5).json()
                return bool(got["status"] in ("completed", "failed"))

            _until(finished, 60, "the task's end")
            task = httpx.get(f"{base}/v1/tasks/{task_id}", headers=headers, timeout=5).json()
            assert task["status"] == "completed", task
            (url,) = task["results"]
            video = httpx.get(url, timeout=10)
            assert video.status_code == 200
            with av.open(io.BytesIO(video.content)) as media:
                assert media.duration is not None and abs(media.duration / av.time_base - 3) < 0.5
        finally:
            server.kill()
        assert fake.video_create_count(task_id) == 1 and len(fake.video_tasks()) == 1
        assert len(fake.requests("video_download")) >= 2  # the first stream was cut, the second completed
    sums = asyncio.run(_ledger(db_url))
    assert sums["reserve"] == sums["capture"] and sums.get("release", 0) == 0
