"""``client.videos`` against a real ``reelgate serve``: without a Kling channel, and with the fake Kling server as
its channel, the whole flow: an element made upstream, a video that uses it, its result downloaded and decoded."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from client.live import LiveServer, jpeg
from reelgate_client import AsyncReelgate, BadRequestError, Reelgate, Task, VideoTask

MODEL = "kling-o3-text-to-video"


def _decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert stream.average_rate is not None
        return frames / float(stream.average_rate)


def _element(client: Reelgate, scene: int) -> str:
    task = client.elements.create(
        name="Rover", description="made upstream", frontal=jpeg(scene), refer=[jpeg(scene + 1)]
    )
    done = client.tasks.wait(task, timeout=60)
    assert done.result is not None
    return done.result.element_id


def test_without_a_kling_channel_video_models_are_not_available(server: LiveServer, api_key: str) -> None:
    with Reelgate(api_key=api_key, base_url=server.base_url) as client:
        with pytest.raises(BadRequestError) as refused:
            client.videos.create(model=MODEL, prompt="a cat", duration=5)
        listed = {m.id: m for m in client.models.list()}
    assert (refused.value.status_code, refused.value.code, refused.value.param) == (400, "model_not_available", "model")
    assert "kling channel" in refused.value.message.lower()
    assert MODEL in listed and not listed[MODEL].available and listed[MODEL].billing_rule == "per_second"


def test_the_server_finds_each_field_where_the_client_puts_it(kling_server: LiveServer) -> None:
    with Reelgate(api_key=kling_server.keys["video"], base_url=kling_server.base_url) as client:
        with pytest.raises(BadRequestError) as unknown:
            client.videos.create(model=MODEL, prompt="<<<element_1>>> waves", elements=["123456789"])
        with pytest.raises(BadRequestError) as too_long:
            client.videos.create(model=MODEL, prompt="a cat", duration=99)
        with pytest.raises(BadRequestError) as tier:
            client.videos.create(model=MODEL, prompt="a cat", quality="8k")
    assert unknown.value.param == "model_params.element_list[0].element_id"
    assert too_long.value.param == "duration" and tier.value.param == "quality"


def test_element_then_video_then_download(kling_server: LiveServer, tmp_path: Path) -> None:
    with Reelgate(api_key=kling_server.keys["video"], base_url=kling_server.base_url) as client:
        element_id = _element(client, scene=70)
        task = client.videos.create(
            model=MODEL,
            prompt="<<<element_1>>> waves hello",
            elements=[element_id],
            duration=3,
            quality="720p",
            sound="off",
            aspect_ratio="16:9",
        )
        assert isinstance(task, VideoTask) and task.status in ("pending", "processing")
        assert task.usage is not None and task.usage.billing_rule == "per_second" and task.usage.credits_reserved > 0

        seen: list[Task] = []
        done = client.videos.wait(task.id, timeout=120, on_progress=seen.append)
        assert isinstance(done, VideoTask) and done.status == "completed" and done.result is None
        assert done.results and all(u.startswith(kling_server.base_url + "/assets/") for u in done.results)
        assert done.raw["type"] == "video" and "result_data" not in done.raw
        assert [t.progress for t in seen] == sorted(t.progress for t in seen)
        assert done.usage is not None and done.usage.credits_charged is not None
        assert 0 < done.usage.credits_charged <= done.usage.credits_reserved

        by_task = client.videos.download(done, tmp_path / "by-task.mp4")
        by_id = client.videos.download(done.id, tmp_path / "by-id.mp4")
    assert by_task.read_bytes() == by_id.read_bytes()
    assert _decoded_seconds(by_task) == pytest.approx(3.0, abs=0.25)


async def test_the_async_twin(kling_server: LiveServer, tmp_path: Path) -> None:
    with Reelgate(api_key=kling_server.keys["video-async"], base_url=kling_server.base_url) as sync_client:
        element_id = _element(sync_client, scene=72)
    async with AsyncReelgate(api_key=kling_server.keys["video-async"], base_url=kling_server.base_url) as client:
        done = await client.videos.create_and_wait(
            model=MODEL, prompt="<<<element_1>>> jumps", elements=[element_id], duration=3, timeout=120
        )
        assert isinstance(done, VideoTask) and done.video_url is not None
        saved = await client.videos.download(done, tmp_path / "async.mp4")
    assert _decoded_seconds(saved) == pytest.approx(3.0, abs=0.25)
