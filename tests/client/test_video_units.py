"""Pure parts of ``client.videos``: the request body it builds, and video tasks parsed from the server's JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelgate_client import MediaInputError, ReelgateError, Task, VideoTask
from reelgate_client._download import absolute, is_task_id, result_url
from reelgate_client._videos import VideoSpec

ELEMENT = "812345678901234567"  # above 2**53: must stay a string
DONE = {
    "id": "task-unified-1757169743-7cvnl5zw",
    "object": "video.generation.task",
    "type": "video",
    "model": "kling-o3-text-to-video",
    "status": "completed",
    "progress": 100,
    "created": 1757169743,
    "task_info": {"can_cancel": False, "estimated_time": 300},
    "usage": {
        "billing_rule": "per_second",
        "credits_reserved": 26.786,
        "user_group": "default",
        "credits_charged": 26.786,
    },
    "results": ["https://gw.example/assets/a.mp4", "https://gw.example/assets/a-watermark.mp4"],
}


def test_the_body_is_evolinks_top_level_fields_and_model_params() -> None:
    spec = VideoSpec(
        model="kling-o3-image-to-video",
        prompt="<<<element_1>>> and <<<element_2>>> dance",
        elements=[ELEMENT, "42"],
        duration=5,
        quality="1080p",
        sound=True,
        aspect_ratio="16:9",
        image_start=" https://img.example/start.jpg ",
        image_urls=["https://img.example/1.png"],
        watermark=True,
        model_params={"multi_shot": False},
        callback_url="https://hooks.example/done",
    )
    assert spec.body() == {
        "model": "kling-o3-image-to-video",
        "prompt": "<<<element_1>>> and <<<element_2>>> dance",
        "duration": 5,
        "quality": "1080p",
        "sound": "on",
        "aspect_ratio": "16:9",
        "image_start": "https://img.example/start.jpg",
        "image_urls": ["https://img.example/1.png"],
        "callback_url": "https://hooks.example/done",
        "model_params": {
            "multi_shot": False,
            "element_list": [{"element_id": ELEMENT}, {"element_id": "42"}],
            "watermark_info": {"enabled": True},
        },
    }


def test_omitted_fields_are_left_to_the_server_and_one_id_is_one_element() -> None:
    assert VideoSpec(model="kling-v3-text-to-video", prompt="a cat").body() == {
        "model": "kling-v3-text-to-video",
        "prompt": "a cat",
    }
    body = VideoSpec(model="m", elements=ELEMENT, sound=False, video_urls="https://v.example/m.mp4").body()
    assert body["model_params"] == {"element_list": [{"element_id": ELEMENT}]}
    assert (body["sound"], body["video_urls"]) == ("off", ["https://v.example/m.mp4"])
    motion = VideoSpec(
        model="kling-v3-motion-control",
        video_url="https://v.example/in.mp4",
        keep_original_sound=True,
        model_params={"character_orientation": "image", "keep_sound": True},
    ).body()
    assert motion["video_url"] == "https://v.example/in.mp4" and motion["keep_original_sound"] is True
    assert motion["model_params"] == {"character_orientation": "image", "keep_sound": True}


def test_media_must_be_urls(tmp_path: Path) -> None:
    local = tmp_path / "start.jpg"
    local.write_bytes(b"\xff\xd8\xff")
    with pytest.raises(MediaInputError, match=r"image_start: video models take media as http\(s\) URLs"):
        VideoSpec(model="m", image_start=str(local)).body()
    with pytest.raises(MediaInputError, match=r"image_urls\[1\]"):
        VideoSpec(model="m", image_urls=["https://ok.example/a.jpg", "data:image/jpeg;base64,AAAA"]).body()


def test_a_video_task_parses_results_and_per_second_usage() -> None:
    task = Task.from_dict(DONE)
    assert task.results == DONE["results"] and task.result is None and task.done
    assert task.usage is not None and task.usage.billing_rule == "per_second" and task.usage.credits_charged == 26.786
    video = VideoTask.from_task(task)
    assert isinstance(video, VideoTask) and video.raw == task.raw and video.video_url == DONE["results"][0]
    assert VideoTask.from_task(video) is video
    pending = VideoTask.from_dict({**DONE, "status": "processing", "progress": 40, "results": None})
    assert pending.results == [] and pending.video_url is None
    element = Task.from_dict({"id": "t", "status": "completed", "result_data": {"element_id": "1"}})
    assert element.results == [] and element.result is not None


def test_which_url_a_download_takes() -> None:
    task = Task.from_dict(DONE)
    assert result_url(task, 0) == DONE["results"][0] and result_url(task, -1) == DONE["results"][1]
    with pytest.raises(ReelgateError, match=r"has 2 result\(s\); there is no results\[2\]"):
        result_url(task, 2)
    with pytest.raises(ReelgateError, match="has no results to download \\(it is processing \\(40%\\)"):
        result_url(Task.from_dict({**DONE, "status": "processing", "progress": 40, "results": None}), 0)
    assert is_task_id(DONE["id"]) and not is_task_id(DONE["results"][0])

    class Client:
        base_url = "http://127.0.0.1:8000"

    assert absolute("/assets/a.mp4", Client()) == "http://127.0.0.1:8000/assets/a.mp4"
    with pytest.raises(ValueError, match="not an http\\(s\\) URL"):
        absolute("out.mp4", Client())
