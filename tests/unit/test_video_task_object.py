"""The public task object of a media-making model shows ``results`` (contract §9); the element model keeps
``result_data``, byte for byte."""

from __future__ import annotations

from typing import Any

import orjson

from reelgate.domain import TaskRecord


def _task(model: str, result: dict[str, Any], rule: str = "per_second") -> TaskRecord:
    return TaskRecord(id="task-unified-1757169743-8dxnm6yz", account_id=1, model=model, status="completed",
                      progress=100, created=1757169743, cancellable=False, estimated_time=300, price=26785,
                      user_group="default", billing_rule=rule, charged=22500, result=result, error_code=None,
                      error_message=None, callback_url=None)  # fmt: skip


def test_a_video_task_shows_results_not_result_data() -> None:
    urls = ["https://gw.example/assets/a.mp4", "https://gw.example/assets/b.mp4"]
    body = _task("kling-o3-text-to-video", {"results": urls}).public()
    assert body["results"] == urls and "result_data" not in body
    assert body["usage"] == {"billing_rule": "per_second", "credits_reserved": 26.785, "credits_charged": 22.5,
                             "user_group": "default"}  # fmt: skip


def test_the_element_task_object_is_unchanged() -> None:
    result = {"element_id": "123", "element_name": "n", "element_description": "d", "reference_type": "image_refer",
              "tag_list": []}  # fmt: skip
    body = _task("kling-custom-element", result, "per_call").public()
    assert orjson.dumps(body) == orjson.dumps({
        "created": 1757169743, "id": "task-unified-1757169743-8dxnm6yz", "model": "kling-custom-element",
        "object": "video.generation.task", "progress": 100, "status": "completed",
        "task_info": {"can_cancel": False, "estimated_time": 300}, "type": "video",
        "usage": {"billing_rule": "per_call", "credits_reserved": 26.785, "user_group": "default",
                  "credits_charged": 22.5},
        "result_data": result,
    })  # fmt: skip
