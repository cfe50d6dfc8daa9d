"""Every rule of contract 3.1 and the request envelope answers 400 with the offending field's dotted path."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from harness import Api, auth, b64_jpeg, image_body

# Loopback URLs on a closed port: an accepted body's task fails fast, and no test reaches past this machine.
URL = "http://127.0.0.1:9/front.jpg"
SIDE = "http://127.0.0.1:9/side.jpg"
CLIP = "http://127.0.0.1:9/clip.mp4"


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node = out["model_params"]
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if value is _DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out


_DELETE = object()
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one character, 7 code points
BASE = image_body(URL, SIDE)
CASES = [
    ("element_name", _DELETE, "model_params.element_name"),
    ("element_name", "", "model_params.element_name"),
    ("element_name", "   ", "model_params.element_name"),
    ("element_name", "x" * 21, "model_params.element_name"),
    ("element_name", "字" * 21, "model_params.element_name"),
    ("element_name", 12, "model_params.element_name"),
    ("element_description", _DELETE, "model_params.element_description"),
    ("element_description", "d" * 101, "model_params.element_description"),
    ("reference_type", "photo_refer", "model_params.reference_type"),
    ("reference_type", _DELETE, "model_params.reference_type"),
    ("element_image_list", _DELETE, "model_params.element_image_list"),
    ("element_image_list.frontal_image", _DELETE, "model_params.element_image_list.frontal_image"),
    ("element_image_list.frontal_image", "ftp://example.com/a.jpg", "model_params.element_image_list.frontal_image"),
    ("element_image_list.frontal_image", "https://e.com/" + "a" * 2040, "model_params.element_image_list.frontal_image"),
    ("element_image_list.refer_images", [], "model_params.element_image_list.refer_images"),
    ("element_image_list.refer_images", [{"image_url": SIDE}] * 4, "model_params.element_image_list.refer_images"),
    ("element_image_list.refer_images.0.image_url", "not base64 !!", "model_params.element_image_list.refer_images[0].image_url"),
    ("element_image_list.refer_images.0", {"url": SIDE}, "model_params.element_image_list.refer_images[0].image_url"),
    ("element_video_list", {"video_url": "https://e.com/v.mp4"}, "model_params.element_video_list"),
    ("element_voice_id", "voice-1", "model_params.element_voice_id"),  # with image_refer: video_refer only
    ("tag_list", [{"tag_id": "o_109"}], "model_params.tag_list[0].tag_id"),
    ("tag_list", [{"tag_id": "o_101"}, {"tag_id": "o_101"}], "model_params.tag_list"),
    ("tag_list", "o_101", "model_params.tag_list"),
    # Free text is what a person sees: no control, bidi-override or hidden format characters, something visible.
    ("element_name", "\x00", "model_params.element_name"),
    ("element_name", "\u200b", "model_params.element_name"),
    ("element_name", "evil\u202egpj.exe", "model_params.element_name"),
    ("element_name", "two\nlines", "model_params.element_name"),
    ("element_name", "\u3164\u3164", "model_params.element_name"),
    ("element_name", FAMILY * 21, "model_params.element_name"),
    ("element_name", "a" + "\u0301" * 300, "model_params.element_name"),
    ("element_description", "a\u2066b\u2069", "model_params.element_description"),
    ("element_description", "bell\x07", "model_params.element_description"),
    ("element_description", "\ufeff", "model_params.element_description"),
    ("element_description", "e\u0301" * 101, "model_params.element_description"),
    ("element_image_list.frontal_image", "https://e.com/a\x00b.jpg", "model_params.element_image_list.frontal_image"),
    ("element_image_list.refer_images.0.image_url", "https://e.com/\u202egpj.jpg", "model_params.element_image_list.refer_images[0].image_url"),
    ("element_image_list.frontal_image", "https://e.com/a b.jpg", "model_params.element_image_list.frontal_image"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "value", "param"), CASES)
async def test_each_rule_names_its_field(api: Api, path: str, value: Any, param: str) -> None:
    key = await api.key()
    response = await api.submit(key, _set(BASE, path, value))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert param in error["message"]
    assert (await api.client.get("/v1/tasks", headers=auth(key))).json()["data"] == []


async def test_video_refer_rules(api: Api) -> None:
    key = await api.key()
    body = image_body(URL, SIDE, reference_type="video_refer")
    error = (await api.submit(key, body)).json()["error"]
    assert error["param"] in ("model_params.element_video_list", "model_params.element_image_list")
    del body["model_params"]["element_image_list"]
    body["model_params"]["element_video_list"] = {"refer_videos": [{"video_url": "https://e.com/a.mp4"}] * 2}
    assert (await api.submit(key, body)).json()["error"]["param"] == "model_params.element_video_list.refer_videos"


def video_body(**params: Any) -> dict[str, Any]:
    model_params = {
        "element_name": "Clip",
        "element_description": "A character from a clip",
        "reference_type": "video_refer",
        "element_video_list": {"refer_videos": [{"video_url": CLIP}]},
    }
    return {"model": "kling-custom-element", "model_params": {**model_params, **params}}


async def test_voice_id_is_taken_with_video_refer_only(api: Api) -> None:
    key = await api.key()
    error = (await api.submit(key, image_body(URL, SIDE, element_voice_id="voice-1"))).json()["error"]
    assert (error["code"], error["param"]) == ("invalid_parameter", "model_params.element_voice_id")
    assert error["message"] == ("model_params.element_voice_id is not allowed when reference_type is image_refer "
                                "(a voice applies to video_refer elements only)")  # fmt: skip
    assert (await api.submit(key, video_body(element_voice_id="voice-1"))).status_code == 200
    assert len((await api.client.get("/v1/tasks", headers=auth(key))).json()["data"]) == 1


@pytest.mark.parametrize("voice", ["v" * 65, "voice\u200b", "\u2800"])
async def test_voice_id_free_text_rules(api: Api, voice: str) -> None:
    error = (await api.submit(await api.key(), video_body(element_voice_id=voice))).json()["error"]
    assert (error["code"], error["param"]) == ("invalid_parameter", "model_params.element_voice_id")


async def test_all_problems_are_listed(api: Api) -> None:
    key = await api.key()
    body = _set(_set(BASE, "element_name", ""), "element_description", "")
    error = (await api.submit(key, body)).json()["error"]
    assert {d["param"] for d in error["details"]} == {"model_params.element_name", "model_params.element_description"}


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model_params": {}}, "model", "missing_parameter"),
        ({"model": "kling-nope", "model_params": {}}, "model", "model_not_found"),
        ({"model": 5, "model_params": {}}, "model", "invalid_parameter"),
        ({"model": "kling-custom-element"}, "model_params", "missing_parameter"),
        ({"model": "kling-custom-element", "model_params": {}}, "model_params.element_name", "missing_parameter"),
        ({"model": "kling-custom-element", "model_params": []}, "model_params", "invalid_parameter"),
    ],
)
async def test_envelope_rules(api: Api, body: dict[str, Any], param: str, code: str) -> None:
    error = (await api.submit(await api.key(), body)).json()["error"]
    assert (error["param"], error["code"]) == (param, code)


async def test_malformed_json_and_non_objects(api: Api) -> None:
    key = await api.key()
    for raw in (b"{", b"[1,2]", b"null", b'"x"'):
        r = await api.client.post("/v1/videos/generations", content=raw, headers=auth(key))
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


async def test_too_large_body_is_413(api: Api) -> None:
    key = await api.key()
    r = await api.client.post("/v1/videos/generations", content=b"x" * (3 * 1024 * 1024), headers=auth(key))
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large_error"


async def test_deep_json_is_refused(api: Api) -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]
    body = {**BASE, "extra": deep}
    r = await api.submit(await api.key(), body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


async def test_many_brackets_at_a_shallow_depth_are_not_too_deep(api: Api) -> None:
    body = {**BASE, "extra": [[{"a": [1]}] for _ in range(40)]}  # 120 brackets, 5 levels
    r = await api.submit(await api.key(), body)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("url", ["http://example.com/cb", "https://localhost/cb", "https://127.0.0.1/cb",
                                 "https://10.0.0.1/x", "https://[::1]/x", "https://0x7f000001/x",
                                 "https://e.com/" + "a" * 2048, "ftp://e.com/x", 12])  # fmt: skip
async def test_callback_url_rules(api: Api, url: Any) -> None:
    api.rt.service.settings = api.rt.service.settings.with_changes(allow_private_networks=False)
    r = await api.submit(await api.key(), {**BASE, "callback_url": url})
    assert r.status_code == 400 and r.json()["error"]["param"] == "callback_url"


async def test_unknown_fields_are_ignored(api: Api) -> None:
    body = _set({**BASE, "surprise": 1}, "future_field", {"a": 1})
    assert (await api.submit(await api.key(), body)).status_code == 200


async def test_base64_media_is_checked_at_submit(api: Api) -> None:
    key = await api.key()
    small = b64_jpeg(1, 200, 200)
    r = await api.submit(key, image_body(small, SIDE))
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "model_params.element_image_list.frontal_image"
    dup = b64_jpeg(1)
    r = await api.submit(key, image_body(dup, dup))
    assert r.json()["error"]["param"] == "model_params.element_image_list.refer_images[0].image_url"
    assert "near-duplicate" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("element_name", f" {FAMILY * 3} ", FAMILY * 3),  # 21 code points, 3 characters
        ("element_name", "\U0001f1ef\U0001f1f5" * 20, "\U0001f1ef\U0001f1f5" * 20),  # 20 flags
        ("element_name", "e\u0301" * 20, "e\u0301" * 20),  # 20 decomposed accented letters
        ("element_name", "\u0645\u0644\u06a9\u200c\u0632\u0627\u062f\u0647", "\u0645\u0644\u06a9\u200c\u0632\u0627\u062f\u0647"),
        ("element_name", "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"),
        ("element_description", "\u0915\u094d\u0937" * 100, "\u0915\u094d\u0937" * 100),  # 100 conjuncts
    ],
)  # fmt: skip
async def test_free_text_counts_what_a_person_sees(api: Api, field: str, value: str, stored: str) -> None:
    loopback = image_body("http://127.0.0.1:9/front.jpg", "http://127.0.0.1:9/side.jpg", **{field: value})
    r = await api.submit(await api.key(), loopback)
    assert r.status_code == 200, r.text
    sql, task_id = "SELECT params FROM tasks WHERE id = :id", r.json()["id"]
    row = await api.rt.store.db.read(lambda c: c.one(sql, {"id": task_id}))
    assert row is not None and json.loads(row["params"])[field] == stored
