"""Each video model's body is one Kling's endpoint accepts (the fake refuses any other with 1201), tasks with elements
run on the channel that made them, and a video edit captures the seconds of its input video."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from fakes.kling_server import FakeKling
from fakes.media_server import MediaServer
from fakes.mediagen import jpeg, mp4
from kling.harness import AK, AK_B, SK_B, Gate, channel, gateway, params, settings_for, write_config
from reelgate.service import Submission

CREDITS = 2_000_000
MODELS = ["kling-v3-text-to-video", "kling-v3-image-to-video", "kling-v3-motion-control", "kling-o3-text-to-video",
          "kling-o3-image-to-video", "kling-o3-reference-to-video", "kling-o3-video-edit"]  # fmt: skip


@pytest.fixture(scope="module")
def media() -> Any:
    with MediaServer() as server:
        server.serve("/a.jpg", jpeg(768, 1024, scene=4), "image/jpeg")
        server.serve("/b.png", jpeg(1024, 768, scene=5), "image/jpeg")
        server.serve("/clip.mp4", mp4(1280, 720, seconds=3, fps=8), "video/mp4")
        yield server


def _bodies(media: MediaServer) -> dict[str, dict[str, Any]]:
    a, b, clip = media.url("/a.jpg"), media.url("/b.png"), media.url("/clip.mp4")
    return {
        "kling-v3-text-to-video": {"prompt": "a lighthouse", "duration": 3, "sound": "on", "aspect_ratio": "9:16"},
        "kling-v3-image-to-video": {"image_start": a, "image_end": b, "prompt": "turns", "duration": 5},
        "kling-v3-motion-control": {"image_urls": [a], "video_urls": [clip], "prompt": "dance",
                                    "model_params": {"character_orientation": "image"}},
        "kling-o3-text-to-video": {"prompt": "a fox", "duration": 3, "model_params": {"watermark_info": {"enabled": True}}},
        "kling-o3-image-to-video": {"image_start": a, "image_urls": [b], "prompt": "a fox runs", "duration": 4},
        "kling-o3-reference-to-video": {"video_url": clip, "image_urls": [a], "prompt": "same style", "duration": 3},
        "kling-o3-video-edit": {"video_url": clip, "prompt": "make it snow", "keep_original_sound": False},
    }  # fmt: skip


async def _run(gate: Gate, body: dict[str, Any]) -> Any:
    task = await gate.rt.service.submit(Submission(body, gate.owner))
    return await gate.wait(task.id, timeout=30)


@pytest.mark.parametrize("model", MODELS)
async def test_every_model_completes_on_its_endpoint(
    tmp_path: Path, db_url: str, fake: FakeKling, media: MediaServer, model: str
) -> None:
    config = write_config(tmp_path / "kling.json", [channel("main", fake)])
    async with gateway(settings_for(tmp_path, db_url, config)) as gate:
        await gate.rt.store.accounts.grant(gate.owner.account_id, CREDITS, "test")
        task = await _run(gate, {"model": model, **_bodies(media)[model]})
        ledger = await gate.ledger()
    assert task.status == "completed", (
        task.error_code,
        task.error_message,
        [r.json() for r in fake.requests("video_create")],
    )
    assert task.result is not None and len(task.result["results"]) == (2 if model == "kling-o3-text-to-video" else 1)
    (created,) = fake.video_tasks()
    assert fake.video_create_count(task.id) == 1
    if model == "kling-o3-video-edit":
        # Reserved for the longest input (10 s), captured for the 3 s the input video lasts.
        assert created.body["video_list"][0]["refer_type"] == "base" and "duration" not in created.body
        assert created.body["video_list"][0]["keep_original_sound"] == "no"
        assert (
            ledger["capture"] == math.ceil(task.price * 3 / 10) and ledger["release"] == task.price - ledger["capture"]
        )
    else:
        assert ledger["capture"] == task.price
    if model == "kling-v3-image-to-video":
        assert {"image", "image_tail"} <= set(created.body) and created.body["mode"] == "std"
    if model == "kling-v3-motion-control":
        assert created.body["character_orientation"] == "image" and created.body["video_url"].endswith("/clip.mp4")


async def test_a_task_with_elements_runs_on_the_channel_that_made_them(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str]
) -> None:
    channels = [channel("main", fake), channel("second", fake, ak=AK_B, sk=SK_B)]
    async with gateway(settings_for(tmp_path, db_url, write_config(tmp_path / "kling.json", channels))) as gate:
        await gate.rt.store.accounts.grant(gate.owner.account_id, CREDITS, "test")
        made = [await gate.wait(await gate.submit(params(images, element_name=f"e{i}"))) for i in range(2)]
        rows = [await gate.rt.store.elements.get(str(t.result["element_id"]), gate.owner.account_id) for t in made]
        on_second = next(
            r for r in rows if r is not None and r.upstream_id is not None and r.upstream_id.startswith("second:")
        )
        for _ in range(2):  # whichever channel the round-robin would pick next, the task goes to "second"
            task = await _run(gate, {"model": "kling-o3-text-to-video", "prompt": "<<<element_1>>> waves",
                                     "model_params": {"element_list": [{"element_id": on_second.id}]}})  # fmt: skip
            assert task.status == "completed", (task.error_code, task.error_message)
    assert {t.account for t in fake.video_tasks()} == {AK_B} and AK_B != AK
