"""The Kling video models at submit (contract §10), through the real app on both databases: each model's
validation table (400 naming the dotted field), the element rules against the caller's element rows, the
model_not_available answer without a Kling channel, and per-second reservations (defaults and the price file).

Submit never calls Kling, so the channel points at an unused loopback port and no worker runs."""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import auth, make_key, make_settings
from procs import free_port
from reelgate.callbacks import new_secret
from reelgate.config import PriceOverride, Settings
from reelgate.runtime import Runtime, build_app

IMG = "https://example.com/face.jpg"
IMG2 = "https://example.com/scene.jpg"
VID = "https://example.com/move.mp4"
CREDITS = 10_000
DELETE = object()


class Video:
    """The app with a Kling channel, its client and the runtime (for element rows and task rows)."""

    def __init__(self, client: httpx.AsyncClient, rt: Runtime) -> None:
        self.client, self.rt = client, rt

    async def key(self, account: str = "acme", group: str | None = None) -> str:
        return await make_key(self.rt, account, CREDITS, group)

    async def submit(self, key: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post("/v1/videos/generations", json=body, headers=auth(key))

    async def element(self, element_id: str, account: str = "acme", *, provider: str = "kling",
                      channel: str = "ch-a", kind: str = "image_refer") -> None:  # fmt: skip
        """An element row as a finished creation task leaves it (inserted directly: no worker runs here)."""
        acct = await self.rt.store.accounts.ensure_account(account, None, new_secret())
        upstream = f"{channel}:{element_id}" if provider == "kling" else None
        row = {"id": element_id, "a": acct, "t": f"task-unified-{element_id}", "p": provider, "u": upstream,
               "d": json.dumps({"element_id": element_id, "reference_type": kind}), "c": int(time.time()),
               "now": time.time()}  # fmt: skip
        sql = ("INSERT INTO elements (id, account_id, task_id, provider, upstream_id, data, created, created_at) "
               "VALUES (:id, :a, :t, :p, :u, :d, :c, :now)")  # fmt: skip
        await self.rt.store.db.write(lambda c: c.run(sql, row))

    async def params(self, task_id: str) -> dict[str, Any]:
        sql = "SELECT params FROM tasks WHERE id = :id"
        row = await self.rt.store.db.read(lambda c: c.one(sql, {"id": task_id}))
        assert row is not None
        return dict(json.loads(row["params"]))


def kling_config(tmp_path: Path, *channels: str) -> str:
    path = tmp_path / "kling.json"
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens: submit never calls Kling
    entries = [{"name": name, "base_url": base, "access_key": f"ak-{name}-0123456789", "secret_key": "s" * 32}
               for name in channels]  # fmt: skip
    path.write_text(json.dumps({"channels": entries}))
    path.chmod(0o600)
    return str(path)


@contextlib.asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Video]:
    app, rt = build_app(settings, worker=False, dispatcher=False)
    ctx = app.state.ctx
    for start in ctx.on_startup:
        await start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            yield Video(client, rt)
    finally:
        for stop in ctx.on_shutdown:
            await stop()


@pytest.fixture
async def video(tmp_path: Path, db_url: str) -> AsyncIterator[Video]:
    async with opened(make_settings(tmp_path, db_url, kling_config=kling_config(tmp_path, "ch-a", "ch-b"))) as v:
        yield v


def with_(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``body`` with the field at dotted ``path`` (``a.b.0.c``) set to ``value`` (DELETE: removed)."""
    out = copy.deepcopy(body)
    node: Any = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out


def refs(n: int) -> list[dict[str, str]]:
    return [{"element_id": str(9_000_000 + i)} for i in range(n)]


CUSTOM = {"multi_shot": True, "shot_type": "customize",
          "multi_prompt": [{"index": 1, "prompt": "a fox wakes", "duration": "2"},
                           {"index": 2, "prompt": "it runs", "duration": "3"}]}  # fmt: skip
BASES: dict[str, dict[str, Any]] = {
    "kling-v3-text-to-video": {"prompt": "A red fox runs through snow", "duration": 5},
    "kling-v3-image-to-video": {"image_start": IMG, "prompt": "The person turns and smiles"},
    "kling-v3-motion-control": {"image_urls": [IMG], "video_urls": [VID],
                                "model_params": {"character_orientation": "image"}},
    "kling-o3-text-to-video": {"prompt": "A red fox runs through snow"},
    "kling-o3-image-to-video": {"prompt": "The scene comes alive", "image_start": IMG},
    "kling-o3-reference-to-video": {"prompt": "In the style of <<<video_1>>>", "video_url": VID},
    "kling-o3-video-edit": {"video_url": VID, "prompt": "Make it night"},
}  # fmt: skip
COMMON = [  # every model with a prompt
    ("prompt", "x" * 2501, "prompt"),
    ("prompt", 5, "prompt"),
    ("prompt", "bad\x00text", "prompt"),
    ("model_params", "x", "model_params"),
    ("model_params.watermark_info", "on", "model_params.watermark_info"),
    ("model_params.watermark_info.enabled", "yes", "model_params.watermark_info.enabled"),
]
SHOTS = [  # the text and image models with multi-shot
    ("prompt", DELETE, "prompt"),
    ("duration", 2, "duration"),
    ("duration", 16, "duration"),
    ("duration", "5", "duration"),
    ("duration", 5.5, "duration"),
    ("quality", "8k", "quality"),
    ("quality", "4k", "quality"),  # no default price: refused until the operator prices it
    ("sound", "loud", "sound"),
    ("model_params.multi_shot", "yes", "model_params.multi_shot"),
    ("model_params.multi_shot", True, "model_params.shot_type"),
    ("model_params", {"multi_shot": True, "shot_type": "customize"}, "model_params.multi_prompt"),
    ("model_params", {**CUSTOM, "multi_prompt": CUSTOM["multi_prompt"][:1]}, "model_params.multi_prompt"),
    ("model_params", {**CUSTOM, "multi_prompt": []}, "model_params.multi_prompt"),
    ("model_params", {**CUSTOM, "multi_prompt": CUSTOM["multi_prompt"] * 4}, "model_params.multi_prompt"),
    ("model_params", {**CUSTOM, "multi_prompt": [{"index": 1, "prompt": "p" * 513, "duration": "5"}]},
     "model_params.multi_prompt[0].prompt"),
    ("model_params", {**CUSTOM, "multi_prompt": [{"index": 1, "prompt": "p", "duration": "five"}]},
     "model_params.multi_prompt[0].duration"),
    ("model_params", {**CUSTOM, "multi_prompt": [{"index": 0, "prompt": "p", "duration": "5"}]},
     "model_params.multi_prompt[0].index"),
    ("model_params", {**CUSTOM, "multi_prompt": [{"prompt": "p", "duration": "5"}]},
     "model_params.multi_prompt[0].index"),
    ("prompt", "<<<element_1>>> waves", "prompt"),
]  # fmt: skip
CASES: dict[str, list[tuple[str, Any, str]]] = {
    "kling-v3-text-to-video": COMMON + SHOTS + [
        ("negative_prompt", "n" * 2501, "negative_prompt"),
        ("aspect_ratio", "4:3", "aspect_ratio"),
        ("model_params.element_list", refs(1), "model_params.element_list"),
    ],
    "kling-v3-image-to-video": COMMON + SHOTS + [
        ("image_start", DELETE, "image_start"),
        ("image_start", "data:image/png;base64,iVBORw0KGgo=", "image_start"),
        ("image_start", "ftp://example.com/a.jpg", "image_start"),
        ("image_start", "https://e.com/" + "a" * 2040, "image_start"),
        ("image_end", "https://e.com/a b.jpg", "image_end"),
        ("model_params.element_list", refs(4), "model_params.element_list"),
        ("model_params.element_list", [{"element_id": "abc"}], "model_params.element_list[0].element_id"),
        ("model_params.element_list", [{}], "model_params.element_list[0].element_id"),
        ("model_params.element_list", [{"element_id": 123}], "model_params.element_list[0].element_id"),
        ("model_params.shot_type", "sometimes", "model_params.shot_type"),
    ],
    "kling-v3-motion-control": COMMON + [
        ("image_urls", DELETE, "image_urls"),
        ("image_urls", [], "image_urls"),
        ("image_urls", [IMG, IMG2], "image_urls"),
        ("image_urls", ["not a url"], "image_urls[0]"),
        ("image_urls", IMG, "image_urls"),
        ("video_urls", DELETE, "video_urls"),
        ("video_urls", ["data:video/mp4;base64,AAAA"], "video_urls[0]"),
        ("model_params", DELETE, "model_params"),
        ("model_params.character_orientation", DELETE, "model_params.character_orientation"),
        ("model_params.character_orientation", "side", "model_params.character_orientation"),
        ("model_params.element_list", refs(1), "model_params.character_orientation"),
        ("model_params.element_list", refs(2), "model_params.element_list"),
        ("model_params.keep_sound", "no", "model_params.keep_sound"),
        ("quality", "4k", "quality"),
        ("prompt", "<<<element_1>>> dances", "prompt"),
    ],
    "kling-o3-text-to-video": COMMON + SHOTS + [
        ("model_params.shot_type", "intelligence", "model_params.shot_type"),
        ("model_params.element_list", refs(8), "model_params.element_list"),
        ("aspect_ratio", "2:1", "aspect_ratio"),
    ],
    "kling-o3-image-to-video": COMMON + SHOTS + [
        ("image_start", 12, "image_start"),
        ("image_urls", IMG, "image_urls"),
        ("image_urls", [IMG, "ftp://x"], "image_urls[1]"),
        ("model_params.element_list", refs(4), "model_params.element_list"),  # 3 at most with a first frame
        ("image_end", IMG2, "image_end"),  # fine alone, but not with 3 images in all:
    ],
    "kling-o3-reference-to-video": COMMON + [
        ("prompt", DELETE, "prompt"),
        ("duration", 11, "duration"),
        ("quality", "4k", "quality"),
        ("video_url", "https://e.com/\u202ev.mp4", "video_url"),
        ("keep_original_sound", "yes", "keep_original_sound"),
        ("image_urls", [IMG, IMG2, IMG], "model_params.element_list"),  # with 2 elements below: 5 > 4
        ("aspect_ratio", "3:2", "aspect_ratio"),
    ],
    "kling-o3-video-edit": COMMON + [
        ("video_url", DELETE, "video_url"),
        ("video_url", "data:video/mp4;base64,AAAA", "video_url"),
        ("quality", "4k", "quality"),
        ("image_urls", [IMG, IMG2, IMG], "model_params.element_list"),  # with 2 elements below: 5 > 4
        ("prompt", "<<<element_3>>> replaces the man", "prompt"),  # 2 elements below
    ],
}  # fmt: skip
TABLE = [(model, *case) for model, cases in CASES.items() for case in cases]


def _body(model: str, path: str, value: Any) -> dict[str, Any]:
    body = with_({"model": model, **BASES[model]}, path, value)
    if model == "kling-o3-image-to-video" and path == "image_end":
        body["image_urls"] = [IMG]  # image_start + image_end + one reference image: 3 images
    if model in ("kling-o3-reference-to-video", "kling-o3-video-edit") and path in ("image_urls", "prompt"):
        body.setdefault("model_params", {})["element_list"] = refs(2)
    return body


async def _rule_problem(video: Video, key: str, model: str, path: str, value: Any, param: str) -> str | None:
    response = await video.submit(key, _body(model, path, value))
    if response.status_code != 400:
        return f"{response.status_code} {response.text}"
    error = response.json()["error"]
    if error["type"] != "invalid_request_error" or error["param"] != param or param not in error["message"]:
        return f"{error}"
    return None


async def test_each_rule_names_its_field(tmp_path: Path, sqlite_template: Path) -> None:
    """The whole table against one app: validation answers before the database is touched, so one engine and one
    app serve every case (one app per case, on both engines, took 50 s of the suite for the same proof)."""
    path = tmp_path / "reelgate.db"
    shutil.copy(sqlite_template, path)
    settings = make_settings(tmp_path, f"sqlite:///{path}", kling_config=kling_config(tmp_path, "ch-a", "ch-b"))
    async with opened(settings) as video:
        key = await video.key()
        failed = {f"{model} {dotted}={value!r}": problem for model, dotted, value, param in TABLE
                  if (problem := await _rule_problem(video, key, model, dotted, value, param))}  # fmt: skip
        assert not failed, failed
        assert (await video.client.get("/v1/tasks", headers=auth(key))).json()["data"] == []  # none was created
    assert len(TABLE) > 100


@pytest.mark.parametrize("model", list(BASES))
async def test_a_valid_request_is_accepted_and_reserves_per_second(video: Video, model: str) -> None:
    key = await video.key()
    response = await video.submit(key, {"model": model, **BASES[model], "unknown_field": 1})
    assert response.status_code == 200, response.text
    task = response.json()
    seconds = {"kling-v3-motion-control": 10, "kling-o3-video-edit": 10}.get(model, 5)
    rate = {"kling-o3-reference-to-video": 8000, "kling-o3-video-edit": 8000}.get(model, 5357)
    assert task["usage"] == {"billing_rule": "per_second", "credits_reserved": rate * seconds / 1000,
                             "user_group": "default"}  # fmt: skip
    assert task["model"] == model and task["type"] == "video" and task["status"] == "pending"
    stored = await video.params(task["id"])
    assert stored["billing"] == {"seconds": seconds}
    assert "upstream" not in stored and "unknown_field" not in stored and "model" not in stored


async def test_defaults_are_applied_and_every_problem_is_listed(video: Video) -> None:
    key = await video.key()
    task = (await video.submit(key, {"model": "kling-o3-text-to-video", "prompt": " A fox \n runs "})).json()
    assert await video.params(task["id"]) == {
        "prompt": "A fox \n runs", "duration": 5, "aspect_ratio": "16:9", "quality": "720p", "sound": "off",
        "model_params": {"multi_shot": False}, "billing": {"seconds": 5},
    }  # fmt: skip
    body = {"model": "kling-v3-image-to-video", "duration": 99, "quality": "8k", "sound": 1}
    error = (await video.submit(key, body)).json()["error"]
    assert {d["param"] for d in error["details"]} == {"image_start", "duration", "quality", "sound"}


async def test_multi_shot_customize_needs_no_prompt(video: Video) -> None:
    key = await video.key()
    body = {"model": "kling-v3-text-to-video", "model_params": CUSTOM}
    response = await video.submit(key, body)
    assert response.status_code == 200, response.text


# --- elements ---------------------------------------------------------------------------------------------------


async def test_own_kling_elements_pin_the_task_to_their_channel(video: Video) -> None:
    key = await video.key()
    await video.element("101", channel="ch-b")
    await video.element("102", channel="ch-b", kind="video_refer")
    body = {"model": "kling-o3-text-to-video", "prompt": "<<<element_1>>> meets <<<element_2>>>",
            "model_params": {"element_list": [{"element_id": "101"}, {"element_id": "102"}]}}  # fmt: skip
    response = await video.submit(key, body)
    assert response.status_code == 200, response.text
    stored = await video.params(response.json()["id"])
    assert stored["upstream"] == {"channel": "ch-b"}
    assert stored["model_params"]["element_list"] == [{"element_id": "101"}, {"element_id": "102"}]


async def _refused(video: Video, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await video.submit(key, body)
    assert response.status_code == 400, response.text
    assert (await video.client.get("/v1/tasks", headers=auth(key))).json()["data"] == []
    return dict(response.json()["error"])


def _o3(*ids: str, prompt: str = "a scene") -> dict[str, Any]:
    return {"model": "kling-o3-text-to-video", "prompt": prompt,
            "model_params": {"element_list": [{"element_id": i} for i in ids]}}  # fmt: skip


async def test_another_tenants_unknown_or_deleted_element_is_refused(video: Video) -> None:
    key = await video.key()
    await video.element("201", account="other")
    await video.element("202")
    acme = await video.rt.store.accounts.ensure_account("acme", None, new_secret())
    assert [e.id for e in await video.rt.store.elements.get_many(["202", "201", "202"], acme)] == ["202"]
    await video.rt.store.elements.mark_deleted("202", acme, time.time())
    error = await _refused(video, key, _o3("201", "999", "202"))
    assert [d["param"] for d in error["details"]] == [f"model_params.element_list[{i}].element_id" for i in range(3)]
    assert "201 was not found" in error["details"][0]["message"]


async def test_a_local_element_cannot_be_used_upstream(video: Video) -> None:
    key = await video.key()
    await video.element("301", provider="local")
    error = await _refused(video, key, _o3("301"))
    assert error["param"] == "model_params.element_list[0].element_id" and error["code"] == "invalid_parameter"
    assert "local engine and cannot be used upstream" in error["message"]


@pytest.mark.parametrize(
    ("model", "kind", "extra"),
    [
        ("kling-v3-motion-control", "image_refer", {}),
        ("kling-o3-reference-to-video", "video_refer", {}),
        ("kling-o3-video-edit", "video_refer", {}),
    ],
)
async def test_an_element_of_a_type_the_model_does_not_take_is_refused(
    video: Video, model: str, kind: str, extra: dict[str, Any]
) -> None:
    key = await video.key()
    await video.element("401", kind=kind)
    body = with_({"model": model, **BASES[model]}, "model_params.element_list", [{"element_id": "401"}])
    if model == "kling-v3-motion-control":
        body["model_params"]["character_orientation"] = "video"
    error = await _refused(video, key, body)
    assert error["param"] == "model_params.element_list[0].element_id" and kind in error["message"]


async def test_a_video_refer_element_drives_motion_control(video: Video) -> None:
    key = await video.key()
    await video.element("402", kind="video_refer", channel="ch-a")
    body = {"model": "kling-v3-motion-control", "image_urls": [IMG], "video_urls": [VID],
            "model_params": {"character_orientation": "video", "element_list": [{"element_id": "402"}]}}  # fmt: skip
    response = await video.submit(key, body)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["credits_reserved"] == 5357 * 30 / 1000  # facing the video: up to 30 s


async def test_elements_of_two_channels_are_refused(video: Video) -> None:
    key = await video.key()
    await video.element("501", channel="ch-a")
    await video.element("502", channel="ch-b")
    error = await _refused(video, key, _o3("501", "502"))
    assert error["param"] == "model_params.element_list[1].element_id" and "one upstream" in error["message"]


async def test_too_many_elements_and_bad_references_are_refused(video: Video) -> None:
    key = await video.key()
    for i in range(4):
        await video.element(str(600 + i))
    body = {"model": "kling-v3-image-to-video", "image_start": IMG, "prompt": "p",
            "model_params": {"element_list": [{"element_id": str(600 + i)} for i in range(4)]}}  # fmt: skip
    assert (await _refused(video, key, body))["param"] == "model_params.element_list"
    error = await _refused(video, key, _o3("600", "601", prompt="<<<element_1>>> and <<<element_3>>>"))
    assert error["param"] == "prompt" and "<<<element_3>>>" in error["message"]


# --- availability and prices --------------------------------------------------------------------------------------


async def test_without_a_kling_channel_the_video_models_are_not_available(tmp_path: Path, db_url: str) -> None:
    async with opened(make_settings(tmp_path, db_url)) as video:
        key = await video.key()
        for model, base in BASES.items():
            error = await _refused(video, key, {"model": model, **base})
            assert (error["code"], error["param"]) == ("model_not_available", "model")
            assert "needs an upstream Kling channel" in error["message"]
        models = (await video.client.get("/v1/models", headers=auth(key))).json()["data"]
        rules = ("request_schema", "fields")  # the request's rules: tests/api/test_openapi.py
        assert {k: v for k, v in models[0].items() if k not in rules} == {
            "id": "kling-custom-element", "object": "model", "type": "video",
            "description": "Turns reference images or one video into a reusable subject element (element_id).",
            "billing_rule": "per_call", "price": 1.0, "user_group": "default", "available": True,
            "prices": [{"user_group": "default", "unit": "call", "price": 1}],
        }  # fmt: skip
        assert {m["id"]: m["available"] for m in models[1:]} == dict.fromkeys(BASES, False)


async def test_models_list_every_price_of_the_callers_group(video: Video) -> None:
    key = await video.key()
    models = {m["id"]: m for m in (await video.client.get("/v1/models", headers=auth(key))).json()["data"]}
    assert all(m["available"] for m in models.values())
    i2v = models["kling-v3-image-to-video"]
    assert i2v["billing_rule"] == "per_second" and i2v["price"] == 5.357
    assert [(p["quality"], p["sound"], p["price"]) for p in i2v["prices"]] == [
        ("720p", "off", 5.357), ("720p", "on", 8.071), ("1080p", "off", 7.143), ("1080p", "on", 10.714)]  # fmt: skip
    assert [(p["quality"], p["price"]) for p in models["kling-o3-video-edit"]["prices"]] == [
        ("720p", 8), ("1080p", 10.714)]  # fmt: skip


async def test_the_price_file_prices_a_tier_and_a_group(tmp_path: Path, db_url: str) -> None:
    prices = (PriceOverride("kling-v3-text-to-video", "default", 20_000, "4k"),
              PriceOverride("kling-v3-text-to-video", "vip", 1_000, "720p", "off"))  # fmt: skip
    settings = make_settings(tmp_path, db_url, kling_config=kling_config(tmp_path, "ch-a"), prices=prices)
    async with opened(settings) as video:
        body = {"model": "kling-v3-text-to-video", "prompt": "a fox", "duration": 7}
        task = (await video.submit(await video.key(), {**body, "quality": "4k", "sound": "on"})).json()
        assert task["usage"]["credits_reserved"] == 140
        vip = await video.key("vipco", group="vip")
        task = (await video.submit(vip, body)).json()
        assert task["usage"] == {"billing_rule": "per_second", "credits_reserved": 7, "user_group": "vip"}
        task = (await video.submit(vip, {**body, "sound": "on"})).json()
        assert task["usage"]["credits_reserved"] == 8071 * 7 / 1000  # the default group's price


async def test_a_reservation_beyond_the_balance_is_402_and_creates_nothing(video: Video) -> None:
    key = await make_key(video.rt, "poor", 20)
    response = await video.submit(key, {"model": "kling-o3-video-edit", **BASES["kling-o3-video-edit"]})
    assert response.status_code == 402, response.text


async def test_a_large_body_takes_the_same_rules(video: Video) -> None:
    """A body over 64 KiB is parsed in the media pool, then the same element rules and price apply."""
    key = await video.key()
    await video.element("701", channel="ch-b")
    body = {**_o3("701", prompt="<<<element_1>>> runs"), "padding": "x" * 70_000, "quality": "1080p"}
    response = await video.submit(key, body)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["credits_reserved"] == 7143 * 5 / 1000
    stored = await video.params(response.json()["id"])
    assert stored["upstream"] == {"channel": "ch-b"} and stored["billing"] == {"seconds": 5}
    key = await video.key("beta")
    assert (await _refused(video, key, {**_o3("702"), "padding": "x" * 70_000}))["param"] == (
        "model_params.element_list[0].element_id"
    )
    assert (await _refused(video, key, {**body, "duration": 1}))["param"] == "duration"
