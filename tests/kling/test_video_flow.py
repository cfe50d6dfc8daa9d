"""The Kling video models end to end against the fake Kling: element → video → result stored by Reelgate and served
from /assets, one upstream create per task, media inputs checked first, result downloads retried, 1303 waited out."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from fakes.kling_server import FakeKling
from fakes.media_server import MediaServer
from fakes.mediagen import jpeg
from kling.harness import Gate, _owner, channel, gateway, params, serve_app, settings_for, until, write_config
from procs import free_port
from reelgate.auth import hash_key, key_prefix, new_api_key
from reelgate.domain import TaskRecord
from reelgate.errors import Conflict
from reelgate.runtime import Runtime
from reelgate.service import Submission

CREDITS = 500_000  # millicredits: a few per-second videos


def _config(tmp_path: Path, fake: FakeKling, **options: Any) -> str:
    return write_config(tmp_path / "kling.json", [channel("main", fake)], **options)


async def _fund(gate: Gate) -> None:
    await gate.rt.store.accounts.grant(gate.owner.account_id, CREDITS, "test")


async def _element(gate: Gate, images: tuple[str, str]) -> str:
    task = await gate.wait(await gate.submit(params(images)))
    assert task.status == "completed" and task.result is not None, (task.error_code, task.error_message)
    return str(task.result["element_id"])


async def _video(gate: Gate, body: dict[str, Any], timeout: float = 20.0) -> TaskRecord:
    task = await gate.rt.service.submit(Submission(body, gate.owner))
    return await gate.wait(task.id, timeout=timeout)


def _seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as media:
        assert media.duration is not None
        return float(media.duration / av.time_base)


async def test_element_then_video_result_served_by_reelgate(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str]
) -> None:
    port = free_port()
    settings = settings_for(tmp_path, db_url, _config(tmp_path, fake), public_base_url=f"http://127.0.0.1:{port}")
    async with serve_app(settings, port, dispatcher=False) as (client, rt):
        gate = Gate(rt, await _owner(rt))
        await _fund(gate)
        element_id = await _element(gate, images)
        body = {"model": "kling-o3-text-to-video", "prompt": "<<<element_1>>> walks on a beach", "duration": 5,
                "model_params": {"element_list": [{"element_id": element_id}]}}  # fmt: skip
        task = await _video(gate, body)
        assert task.status == "completed", (task.error_code, task.error_message)
        assert task.result is not None
        (url,) = task.result["results"]
        assert url.startswith(f"http://127.0.0.1:{port}/assets/") and url.endswith(".mp4")
        async with httpx.AsyncClient() as plain:
            served = await plain.get(url)
        assert served.status_code == 200 and abs(_seconds(served.content) - 5) < 0.5
        # The upstream URL and video id are the operators': in the state, never in the public result.
        row = await rt.store.db.read(lambda c: c.one("SELECT state FROM tasks WHERE id = :id", {"id": task.id}))
        assert row is not None and "/_fake/videos/" in row["state"] and "_fake" not in str(task.result)
        public = (await client.get(f"/v1/tasks/{task.id}", headers=await _key(rt, gate))).json()
        assert public["status"] == "completed" and public.get("results") == [url]
    (created,) = fake.video_tasks("omni-video")
    assert created.body["element_list"] == [{"element_id": int(element_id)}]  # the exact integer, not a string
    assert created.body["model_name"] == "kling-v3-omni" and created.body["duration"] == "5"
    assert fake.video_create_count(task.id) == 1


async def test_image_to_video_checks_and_hands_over_the_first_frame(
    tmp_path: Path, db_url: str, fake: FakeKling
) -> None:
    with MediaServer() as media:
        media.serve("/start.jpg", jpeg(768, 1024, scene=3), "image/jpeg")
        media.serve("/not-an-image.jpg", b"<html>nope</html>", "image/jpeg")
        async with gateway(settings_for(tmp_path, db_url, _config(tmp_path, fake))) as gate:
            await _fund(gate)
            ok = await _video(gate, {"model": "kling-v3-image-to-video", "image_start": media.url("/start.jpg"),
                                     "prompt": "a slow zoom", "duration": 3})  # fmt: skip
            refused = await _video(gate, {"model": "kling-v3-image-to-video", "prompt": "x",
                                          "image_start": media.url("/not-an-image.jpg")})  # fmt: skip
            ledger = await gate.ledger()
    assert ok.status == "completed", (ok.error_code, ok.error_message)
    assert refused.status == "failed" and refused.error_code == "image_processing_error"
    assert "image_start" in (refused.error_message or "")
    assert fake.video_create_count(refused.id) == 0  # refused before any upstream call: it cost nothing
    (created,) = fake.video_tasks("image2video")
    assert created.body["image"][:4] == "/9j/"  # media_handoff base64: the JPEG we checked
    assert ledger["release"] == refused.price and ledger["capture"] == ok.price


async def test_result_that_404s_is_retried_then_stored(tmp_path: Path, db_url: str, fake: FakeKling) -> None:
    fake.missing_next_result(fetches=2)
    async with gateway(settings_for(tmp_path, db_url, _config(tmp_path, fake))) as gate:
        await _fund(gate)
        task = await _video(gate, {"model": "kling-v3-text-to-video", "prompt": "rain", "duration": 3})
    assert task.status == "completed", (task.error_code, task.error_message)
    assert len(fake.requests("video_download")) == 3 and fake.video_create_count(task.id) == 1


async def test_result_that_never_comes_fails_the_task_and_refunds(tmp_path: Path, db_url: str, fake: FakeKling) -> None:
    fake.missing_next_result(fetches=None)
    async with gateway(settings_for(tmp_path, db_url, _config(tmp_path, fake, download_retries=2))) as gate:
        await _fund(gate)
        task = await _video(gate, {"model": "kling-v3-text-to-video", "prompt": "rain", "duration": 3})
        ledger = await gate.ledger()
    assert task.status == "failed" and task.error_code == "service_error" and task.charged == 0
    assert ledger.get("capture", 0) == 0 and ledger["release"] == task.price
    assert len(fake.requests("video_download")) == 3 and fake.video_create_count(task.id) == 1


async def test_kling_concurrency_answer_1303_is_waited_out(tmp_path: Path, db_url: str, fake: FakeKling) -> None:
    """Kling's own cap (other users of the account) below ours: the second task waits, never fails, one create."""
    fake.set_concurrency(1)
    async with gateway(settings_for(tmp_path, db_url, _config(tmp_path, fake, max_retries=1))) as gate:
        await _fund(gate)
        body = {"model": "kling-v3-text-to-video", "prompt": "rain", "duration": 3}
        first = await gate.rt.service.submit(Submission(body, gate.owner))
        second = await gate.rt.service.submit(Submission(body, gate.owner))
        done = [await gate.wait(t.id, timeout=30) for t in (first, second)]
    assert [t.status for t in done] == ["completed", "completed"], [(t.error_code, t.error_message) for t in done]
    # More creates than tasks: Kling answered 1303 at least once, and no task was made twice.
    assert len(fake.requests("video_create")) > 2 and len(fake.video_tasks()) == 2 and fake.max_in_flight() == 1
    assert fake.video_create_count(first.id) >= 1 and fake.video_create_count(second.id) >= 1


async def _key(rt: Runtime, gate: Gate) -> dict[str, str]:
    key = new_api_key()
    await rt.store.accounts.add_key(gate.owner.account_id, hash_key(key), key_prefix(key), "test")
    return {"Authorization": f"Bearer {key}"}


async def test_cancel_while_waiting_for_a_slot_refunds_and_sends_nothing(
    tmp_path: Path, db_url: str, fake: FakeKling
) -> None:
    """Cap 1, held by a task Kling keeps processing: the next task waits before its create, still cancellable."""
    fake.stall_next_video()
    config = write_config(tmp_path / "kling.json", [channel("main", fake, concurrency=1)])
    async with gateway(settings_for(tmp_path, db_url, config)) as gate:
        await _fund(gate)
        body = {"model": "kling-v3-text-to-video", "prompt": "rain", "duration": 3}
        held = await gate.rt.service.submit(Submission(body, gate.owner))
        await until(lambda: fake.video_task(held.id) is not None)
        waiting = await gate.rt.service.submit(Submission(body, gate.owner))
        await asyncio.sleep(0.5)  # several runs find the channel full
        running = await gate.rt.store.tasks.get(held.id)
        assert running is not None and not running.can_cancel  # created upstream: no way back
        with pytest.raises(Conflict):
            await gate.rt.service.cancel(held.id, gate.owner)
        cancelled = await gate.rt.service.cancel(waiting.id, gate.owner)
        assert cancelled.error_code == "request_cancelled" and cancelled.charged == 0
        fake.set_video_status(held.id, "succeed")
        finished = await gate.wait(held.id, timeout=10)
        left = await gate.rt.store.upstream_slots.in_flight("kling:main")
    assert finished.status == "completed" and left == 0
    assert fake.video_create_count(waiting.id) == 0 and len(fake.video_tasks()) == 1


async def test_a_result_above_the_cap_fails_at_once_and_refunds(tmp_path: Path, db_url: str, fake: FakeKling) -> None:
    fake.huge_next_result(megabytes=3)
    config = _config(tmp_path, fake, result_max_bytes=1024 * 1024)
    async with gateway(settings_for(tmp_path, db_url, config)) as gate:
        await _fund(gate)
        task = await _video(gate, {"model": "kling-v3-text-to-video", "prompt": "rain", "duration": 3})
        stored = await gate.rt.store.uploads.of_task(task.id)
    assert task.status == "failed" and task.error_code == "service_error" and task.charged == 0
    assert len(fake.requests("video_download")) == 1 and stored == []  # no retry, nothing left behind


async def test_a_trickling_result_is_cut_at_its_time_limit_and_fetched_again(
    tmp_path: Path, db_url: str, fake: FakeKling
) -> None:
    fake.trickle_next_result(bytes_per_second=2048)
    config = _config(tmp_path, fake, download_total=0.5, download_retries=2)
    async with gateway(settings_for(tmp_path, db_url, config)) as gate:
        await _fund(gate)
        task = await _video(gate, {"model": "kling-v3-text-to-video", "prompt": "rain", "duration": 3})
    assert task.status == "failed" and task.error_code == "service_error" and task.charged == 0
    assert len(fake.requests("video_download")) == 3  # the first try and two more, each cut after 0.5 s


async def test_a_result_cut_halfway_is_fetched_again(tmp_path: Path, db_url: str, fake: FakeKling) -> None:
    fake.cut_next_result(fetches=1)
    async with gateway(settings_for(tmp_path, db_url, _config(tmp_path, fake))) as gate:
        await _fund(gate)
        task = await _video(gate, {"model": "kling-v3-text-to-video", "prompt": "rain", "duration": 3})
        stored = await gate.rt.store.uploads.of_task(task.id)
    assert task.status == "completed", (task.error_code, task.error_message)
    assert len(fake.requests("video_download")) == 2 and len(stored) == 1  # the cut copy left nothing behind
