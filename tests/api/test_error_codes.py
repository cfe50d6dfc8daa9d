"""Error codes are consistent (issue 21), through the real app.

A required field left out answers ``missing_parameter`` wherever it sits (top level, in ``model_params``, inside a
list item, or required only by another field's value), for every model of the catalogue; any other broken rule is
``invalid_parameter``; each problem of a many-problem answer carries its own code. A media item that breaks a rule
gets the same code and the same words whether it came as Base64 (400 at submit) or as a URL (a failed task), and
a URL that cannot be fetched says from which host and why, with the whole story in the worker's log.

Codes are decided before the database is touched (and the worker's media checks are the same on either engine),
so each test runs its whole table against one app on SQLite, collecting every failure.
"""

from __future__ import annotations

import base64
import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.test_video_models import BASES, DELETE, Video, kling_config, opened, with_
from fakes import mediagen
from fakes.media_server import MediaServer
from harness import Api, image_body, make_settings, open_api

ELEMENT = image_body("https://example.com/front.jpg", "https://example.com/side.jpg", tag_list=[{"tag_id": "o_102"}])
BODIES: dict[str, dict[str, Any]] = {**{m: {"model": m, **b} for m, b in BASES.items()},
                                     "kling-custom-element": ELEMENT}  # fmt: skip


def _sqlite(tmp_path: Path, template: Path) -> str:
    shutil.copy(template, tmp_path / "reelgate.db")
    return f"sqlite:///{tmp_path / 'reelgate.db'}"


@pytest.fixture
async def video(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Video]:
    """Every model served (a Kling channel on an unused loopback port), no worker: submit answers only."""
    settings = make_settings(tmp_path, _sqlite(tmp_path, sqlite_template), kling_config=kling_config(tmp_path, "ch-a"))
    async with opened(settings) as v:
        yield v


@pytest.fixture
async def local(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Api]:
    """The app with its worker and the local engine: URL media is fetched and checked by a task."""
    async with open_api(make_settings(tmp_path, _sqlite(tmp_path, sqlite_template))) as api:
        yield api


def fields(node: Any, path: str = "", shown: str = "") -> Iterator[tuple[str, str]]:
    """Every object key under ``node`` as (``with_`` path, the dotted param the API names), lists walked into."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        here = f"{path}.{key}" if path else str(key)
        named = f"{shown}[{key}]" if isinstance(key, int) else f"{shown}.{key}" if shown else str(key)
        if isinstance(key, str) and key != "model":
            yield here, named
        yield from fields(value, here, named)


def test_every_model_of_the_catalogue_is_covered() -> None:
    from reelgate.catalog import default_catalog

    assert set(BODIES) == set(default_catalog())


async def test_a_field_left_out_is_missing_parameter_for_every_model(video: Video) -> None:
    key = await video.key()
    failed: dict[str, Any] = {}
    for model, body in BODIES.items():
        assert (await video.submit(key, body)).status_code == 200, model
        required = []
        for path, param in fields(body):
            answer = await video.submit(key, with_(body, path, DELETE))
            if answer.status_code == 200:
                continue  # an optional field
            error = answer.json()["error"]
            said = (error["param"], error["code"], error["type"], error["message"].startswith(f"{param} is required"))
            if said != (param, "missing_parameter", "invalid_request_error", True):
                failed[f"{model} without {param}"] = error
            required.append(param)
        if not required:
            failed[model] = "no field turned out to be required"
    assert not failed, failed


CODES = [
    # required only because of another field's value
    ("kling-custom-element", "model_params.element_image_list", DELETE, "model_params.element_image_list",
     "missing_parameter"),
    ("kling-custom-element", "model_params", {**ELEMENT["model_params"], "reference_type": "video_refer",
     "element_image_list": None}, "model_params.element_video_list", "missing_parameter"),
    ("kling-v3-text-to-video", "model_params.multi_shot", True, "model_params.shot_type", "missing_parameter"),
    ("kling-o3-text-to-video", "model_params", {"multi_shot": True, "shot_type": "customize"},
     "model_params.multi_prompt", "missing_parameter"),
    ("kling-o3-reference-to-video", "prompt", DELETE, "prompt", "missing_parameter"),
    ("kling-v3-text-to-video", "prompt", DELETE, "prompt", "missing_parameter"),
    # inside a list item
    ("kling-custom-element", "model_params.element_image_list.refer_images", [{"url": "https://e.com/a.jpg"}],
     "model_params.element_image_list.refer_images[0].image_url", "missing_parameter"),
    ("kling-v3-image-to-video", "model_params.element_list", [{}], "model_params.element_list[0].element_id",
     "missing_parameter"),
    # present but wrong: invalid, wherever it sits
    ("kling-custom-element", "model_params.element_name", 12, "model_params.element_name", "invalid_parameter"),
    ("kling-custom-element", "model_params.element_name", "", "model_params.element_name", "invalid_parameter"),
    ("kling-custom-element", "model_params.reference_type", None, "model_params.reference_type",
     "invalid_parameter"),
    ("kling-v3-text-to-video", "duration", 2, "duration", "invalid_parameter"),
    ("kling-v3-text-to-video", "prompt", "  ", "prompt", "invalid_parameter"),  # given, but empty
    ("kling-o3-reference-to-video", "prompt", "", "prompt", "invalid_parameter"),
    ("kling-v3-motion-control", "model_params", "x", "model_params", "invalid_parameter"),
    ("kling-o3-video-edit", "video_url", 5, "video_url", "invalid_parameter"),
]  # fmt: skip


async def test_missing_and_invalid_codes(video: Video) -> None:
    key = await video.key()
    failed = {}
    for model, path, value, param, code in CODES:
        answer = await video.submit(key, with_(BODIES[model], path, value))
        error = answer.json().get("error", {})
        if (answer.status_code, error.get("param"), error.get("code")) != (400, param, code):
            failed[f"{model} {path}={value!r}"] = answer.text
    assert not failed, failed


async def test_each_problem_of_many_carries_its_own_code(video: Video) -> None:
    params = {"element_name": "", "reference_type": "image_refer"}  # description and image list left out
    error = (await video.submit(await video.key(), {"model": "kling-custom-element", "model_params": params})).json()
    codes = {d["param"]: d["code"] for d in error["error"]["details"]}
    assert codes == {"model_params.element_name": "invalid_parameter",
                     "model_params.element_description": "missing_parameter",
                     "model_params.element_image_list": "missing_parameter"}  # fmt: skip
    assert error["error"]["code"] == "invalid_parameter"  # the first problem leads, as its message does


# --- the same bad media by Base64 and by URL --------------------------------------------------------------------

FRONT = mediagen.jpeg(768, 1024, scene=1)
BAD_IMAGES = {
    "gif": (mediagen.gif(scene=4), "image/gif", "must be a JPEG or PNG image, got a GIF image"),
    "small": (mediagen.jpeg(200, 200, scene=5), "image/jpeg", "must be at least 300x300 pixels, got 200x200"),
    "near-duplicate": (mediagen.jpeg(768, 1024, scene=1, quality=60), "image/jpeg",
                       "is a near-duplicate of the frontal image; each refer image must show another view"),
}  # fmt: skip
REFER = "model_params.element_image_list.refer_images[0].image_url"
VIDEO = "model_params.element_video_list.refer_videos[0].video_url"


def _data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64," + base64.b64encode(data).decode()


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        server.serve("/front.jpg", FRONT, "image/jpeg")
        yield server


async def test_a_bad_image_has_one_code_and_one_message_by_base64_or_url(local: Api, media: MediaServer) -> None:
    key = await local.key(credits=10)
    front = _data_uri(FRONT, "image/jpeg")
    for case, (data, content_type, rule) in BAD_IMAGES.items():
        inline = (await local.submit(key, image_body(front, _data_uri(data, content_type)))).json()
        assert inline["error"] == {"code": "image_processing_error", "type": "invalid_request_error",
                                   "param": REFER, "message": f"{REFER} {rule}"}, case  # fmt: skip
        media.serve(f"/{case}", data, content_type)
        task_id = (await local.submit(key, image_body(media.url("/front.jpg"), media.url(f"/{case}")))).json()["id"]
        task = await local.wait(key, task_id)
        assert task["error"] == {"code": "image_processing_error", "type": "task_error",
                                 "message": f"{REFER} {rule}"}, case  # fmt: skip


async def test_a_bad_video_has_one_code_and_one_message_by_base64_or_url(local: Api, media: MediaServer) -> None:
    clip = mediagen.mp4(1280, 720, seconds=9, fps=1)
    rule = "must be 3-8 seconds long, got 9.0 s"

    def body(source: str) -> dict[str, Any]:
        return {"model": "kling-custom-element", "model_params": {
            "element_name": "clip", "element_description": "too long", "reference_type": "video_refer",
            "element_video_list": {"refer_videos": [{"video_url": source}]}}}  # fmt: skip

    key = await local.key()
    inline = (await local.submit(key, body(_data_uri(clip, "video/mp4")))).json()
    assert inline["error"] == {"code": "invalid_parameters", "type": "invalid_request_error", "param": VIDEO,
                               "message": f"{VIDEO} {rule}"}  # fmt: skip
    not_video = (await local.submit(key, body(_data_uri(b"\x00" * 64, "video/mp4")))).json()["error"]
    assert (not_video["code"], not_video["message"]) == ("invalid_parameters", f"{VIDEO} must be an MP4 or MOV video")
    media.serve("/clip.mp4", clip, "video/mp4")
    task = await local.wait(key, (await local.submit(key, body(media.url("/clip.mp4")))).json()["id"])
    assert task["error"] == {"code": "invalid_parameters", "type": "task_error", "message": f"{VIDEO} {rule}"}


async def test_a_url_that_cannot_be_fetched_names_host_and_reason(local: Api, media: MediaServer,
                                                                  caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    key = await local.key(credits=1)
    media.status("/missing.jpg", 404)
    caplog.set_level(logging.WARNING, logger="reelgate.media")
    task_id = (await local.submit(key, image_body(media.url("/front.jpg"), media.url("/missing.jpg?t=1")))).json()["id"]
    task = await local.wait(key, task_id)
    host = f"127.0.0.1:{media.port}"
    assert task["error"] == {
        "code": "image_processing_error",
        "type": "task_error",
        "message": f"could not fetch {REFER} from {host}: the server answered HTTP 404 Not Found",
    }
    assert task["usage"]["credits_charged"] == 0
    [record] = [r for r in caplog.records if r.name == "reelgate.media"]
    assert (record.task_id, record.field, record.status_code) == (task_id, REFER, 404)  # type: ignore[attr-defined]
    assert record.url == f"http://{host}/missing.jpg" and record.peer == host  # type: ignore[attr-defined]
