"""Whole task lives through the in-process API: completion, billing, elements, tenancy, idempotency, cancel."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest

from fakes import mediagen
from fakes.media_server import MediaServer
from harness import Api, auth, b64_jpeg, image_body


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        server.serve("/front.jpg", mediagen.jpeg(768, 1024, scene=1), "image/jpeg")
        server.serve("/side.png", mediagen.png(768, 1024, scene=2), "image/png")
        server.serve("/back.jpg", mediagen.jpeg(1024, 768, scene=3), "image/jpeg")
        server.serve("/same.jpg", mediagen.jpeg(768, 1024, scene=1, quality=60), "image/jpeg")
        server.serve("/anim.gif", mediagen.gif(scene=4), "image/gif")
        server.status("/missing.jpg", 404)
        yield server


async def _balance(api: Api, account: str = "acme") -> tuple[int, int, int]:
    acct = await api.rt.store.accounts.account_id(account)
    assert acct is not None
    b = (await api.rt.store.accounts.view(acct)).balance
    return b.available, b.reserved, b.captured


async def test_seed_example_from_urls_completes_and_is_charged_once(api: Api, media: MediaServer) -> None:
    key = await api.key(credits=2)
    body = image_body(media.url("/front.jpg"), media.url("/side.png"), media.url("/back.jpg"),
                      tag_list=[{"tag_id": "o_102"}])  # fmt: skip
    submitted = (await api.submit(key, body)).json()
    assert submitted["status"] == "pending" and submitted["progress"] == 0
    assert submitted["usage"] == {"billing_rule": "per_call", "credits_reserved": 1, "user_group": "default"}
    task = await api.wait(key, submitted["id"])
    assert task["status"] == "completed" and task["progress"] == 100, task
    assert task["usage"]["credits_charged"] == 1 and task["task_info"]["can_cancel"] is False
    result = task["result_data"]
    assert result["element_id"].isdigit() and int(result["element_id"]) < 2**53
    assert result["tag_list"] == [{"tag_id": "o_102"}] and "element_voice_info" not in result
    assert len(result["element_image_list"]["refer_images"]) == 2
    stored = result["element_image_list"]["frontal_image"].removeprefix("http://testserver")
    got = await api.client.get(stored)
    assert got.status_code == 200 and got.content == mediagen.jpeg(768, 1024, scene=1)
    assert await _balance(api) == (1000, 0, 1000)
    element = (await api.client.get(f"/v1/elements/{result['element_id']}", headers=auth(key))).json()
    assert element["task_id"] == task["id"] and element["element_name"] == "My Character"


async def test_a_broken_url_fails_the_task_and_refunds(api: Api, media: MediaServer) -> None:
    key = await api.key(credits=1)
    task = await api.wait(key, (await api.submit(key, image_body(media.url("/front.jpg"),
                                                                  media.url("/missing.jpg")))).json()["id"])  # fmt: skip
    assert task["status"] == "failed" and task["error"]["code"] == "image_processing_error"
    assert "refer_images[0]" in task["error"]["message"] and "404" in task["error"]["message"]
    assert task["usage"]["credits_charged"] == 0
    assert await _balance(api) == (1000, 0, 0)


@pytest.mark.parametrize(("path", "words"), [("/anim.gif", "GIF"), ("/same.jpg", "near-duplicate")])
async def test_media_rules_fail_the_task_naming_image_and_rule(api: Api, media: MediaServer, path: str,
                                                              words: str) -> None:  # fmt: skip
    key = await api.key()
    task = await api.wait(key, (await api.submit(key, image_body(media.url("/front.jpg"),
                                                                  media.url(path)))).json()["id"])  # fmt: skip
    assert task["error"]["code"] == "image_processing_error" and words in task["error"]["message"]
    assert "refer_images[0]" in task["error"]["message"]


def _video_body(video_list: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"model": "kling-custom-element", "model_params": {
        "element_name": "clip", "element_description": "from a video", "reference_type": "video_refer",
        "element_video_list": video_list, **params}}  # fmt: skip


async def test_base64_video_makes_an_element_with_a_thumbnail(api: Api) -> None:
    key = await api.key()
    clip = "data:video/mp4;base64," + base64.b64encode(mediagen.mp4(1920, 1080, seconds=4, fps=4)).decode()
    task = await api.wait(key, (await api.submit(key, _video_body({"video_url": clip}))).json()["id"])
    assert task["status"] == "completed", task
    videos = task["result_data"]["element_video_list"]
    assert videos["refer_videos"][0]["video_url"].endswith(".mp4") and videos["thumbnail_url"].endswith(".jpg")


async def test_a_720p_video_url_with_a_voice_makes_an_element(api: Api, media: MediaServer) -> None:
    """EvoLink's newer video rule (contract 9): 1280x720 for 5 s is taken; the voice id passes through."""
    key = await api.key()
    clip = mediagen.mp4(1280, 720, seconds=5, fps=4)
    media.serve("/clip.mp4", clip, "video/mp4")
    body = _video_body({"refer_videos": [{"video_url": media.url("/clip.mp4")}]}, element_voice_id="voice-1")
    task = await api.wait(key, (await api.submit(key, body)).json()["id"])
    assert task["status"] == "completed", task
    result = task["result_data"]
    assert result["reference_type"] == "video_refer" and result["element_voice_info"] == {"voice_id": "voice-1"}
    stored_url = result["element_video_list"]["refer_videos"][0]["video_url"]
    stored = await api.client.get(stored_url.removeprefix("http://testserver"))
    assert stored.status_code == 200 and stored.content == clip
    element = (await api.client.get(f"/v1/elements/{result['element_id']}", headers=auth(key))).json()
    assert element["element_voice_info"] == {"voice_id": "voice-1"}


async def test_video_urls_breaking_the_rule_fail_naming_it(api: Api, media: MediaServer) -> None:
    """9 s, 600 px wide and 3:1 (2160x720) each fail their task naming the field and the rule, refunded."""
    key = await api.key(credits=3)
    field = "model_params.element_video_list.refer_videos[0].video_url"
    cases = [(1280, 720, 9, "must be 3-8 seconds long, got 9.0 s"),
             (600, 1080, 4, "must have width and height within 720-2160 px, got 600x1080"),
             (2160, 720, 4, "must have an aspect ratio between 1:2.5 and 2.5:1, got 2160x720")]  # fmt: skip
    for width, height, seconds, rule in cases:
        media.serve(f"/{width}x{height}.mp4", mediagen.mp4(width, height, seconds=seconds, fps=1), "video/mp4")
        body = _video_body({"refer_videos": [{"video_url": media.url(f"/{width}x{height}.mp4")}]})
        task = await api.wait(key, (await api.submit(key, body)).json()["id"])
        assert task["status"] == "failed" and task["error"] == {"code": "invalid_parameters", "type": "task_error",
                                                                 "message": f"{field} {rule}"}  # fmt: skip
        assert task["usage"]["credits_charged"] == 0
    assert await _balance(api) == (3000, 0, 0)


async def test_402_creates_nothing(api: Api) -> None:
    key = await api.key(credits=0)
    r = await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))
    assert r.status_code == 402 and r.json()["error"]["type"] == "insufficient_quota_error"
    assert (await api.client.get("/v1/tasks", headers=auth(key))).json()["data"] == []


async def test_authentication(api: Api) -> None:
    key = await api.key()
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}, {"Authorization": "Bearer rg_x"}):
        r = await api.client.get("/v1/tasks", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    acct = await api.rt.store.accounts.account_id("acme")
    assert acct is not None
    await api.rt.store.accounts.revoke_key(key[:10])
    await asyncio.sleep(1.1)  # the key cache honours a revocation within its TTL (1 s)
    r = await api.client.get("/v1/tasks", headers=auth(key))
    assert r.status_code == 401 and r.json()["error"]["code"] == "revoked_api_key"


async def test_tenants_cannot_see_each_other(api: Api) -> None:
    mine, theirs = await api.key("a"), await api.key("b")
    task = await api.wait(mine, (await api.submit(mine, image_body(b64_jpeg(1), b64_jpeg(2)))).json()["id"])
    element_id = task["result_data"]["element_id"]
    for path in (f"/v1/tasks/{task['id']}", f"/v1/elements/{element_id}", f"/v1/tasks/{task['id']}/callbacks"):
        r = await api.client.get(path, headers=auth(theirs))
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert (await api.client.post(f"/v1/tasks/{task['id']}/cancel", headers=auth(theirs))).status_code == 404
    assert (await api.client.delete(f"/v1/elements/{element_id}", headers=auth(theirs))).status_code == 404
    assert (await api.client.get("/v1/elements", headers=auth(theirs))).json()["data"] == []


async def test_idempotency_key(api: Api) -> None:
    key = await api.key(credits=3)
    body = image_body(b64_jpeg(1), b64_jpeg(2))
    first = await api.submit(key, body, **{"Idempotency-Key": "abc"})
    again = await api.submit(key, body, **{"Idempotency-Key": "abc"})
    assert first.json()["id"] == again.json()["id"]
    other = await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(3)), **{"Idempotency-Key": "abc"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    await api.wait(key, first.json()["id"])
    assert (await _balance(api))[0] == 2000


async def test_cancel_refunds_and_is_final(api: Api, media: MediaServer) -> None:
    key = await api.key(credits=1)
    media.stall("/slow.jpg")
    task_id = (await api.submit(key, image_body(media.url("/front.jpg"), media.url("/slow.jpg")))).json()["id"]
    cancelled = await api.client.post(f"/v1/tasks/{task_id}/cancel", headers=auth(key))
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "failed" and body["error"]["code"] == "request_cancelled"
    assert body["usage"]["credits_charged"] == 0 and body["task_info"]["can_cancel"] is False
    # A retried cancel (the first answer was lost) gets the cancelled task again: idempotent, nothing refunded twice.
    again = await api.client.post(f"/v1/tasks/{task_id}/cancel", headers=auth(key))
    assert again.status_code == 200 and again.json() == body, again.text
    assert await _balance(api) == (1000, 0, 0)


async def test_elements_list_and_delete(api: Api) -> None:
    key = await api.key(credits=3)
    ids = []
    for scene in (1, 3):
        task = await api.wait(
            key, (await api.submit(key, image_body(b64_jpeg(scene), b64_jpeg(scene + 1)))).json()["id"]
        )
        ids.append(task["result_data"]["element_id"])
    page = (await api.client.get("/v1/elements?limit=1", headers=auth(key))).json()
    assert page["has_more"] and len(page["data"]) == 1 and page["data"][0]["id"] in ids
    gone = await api.client.delete(f"/v1/elements/{ids[0]}", headers=auth(key))
    assert gone.json() == {"object": "element", "id": ids[0], "deleted": True}
    assert (await api.client.get(f"/v1/elements/{ids[0]}", headers=auth(key))).status_code == 404
    assert (await api.client.delete(f"/v1/elements/{ids[0]}", headers=auth(key))).status_code == 404


async def test_task_list_filters_and_pages(api: Api) -> None:
    key = await api.key(credits=5)
    made = [(await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).json()["id"] for _ in range(3)]
    for task_id in made:
        await api.wait(key, task_id)
    first = (await api.client.get("/v1/tasks?limit=2", headers=auth(key))).json()
    second = (await api.client.get(f"/v1/tasks?limit=2&after={first['last_id']}", headers=auth(key))).json()
    assert first["has_more"] and not second["has_more"]
    assert sorted(t["id"] for t in first["data"] + second["data"]) == sorted(made)
    done = (await api.client.get("/v1/tasks?status=completed", headers=auth(key))).json()["data"]
    assert len(done) == 3
    bad = await api.client.get("/v1/tasks?status=cancelled", headers=auth(key))
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "status"


async def test_task_ids_and_unknown_routes(api: Api) -> None:
    key = await api.key()
    bad = await api.client.get("/v1/tasks/not-a-task", headers=auth(key))
    assert bad.status_code == 400 and bad.json()["error"] == {
        "code": "invalid_task_id", "message": bad.json()["error"]["message"], "type": "invalid_request_error",
        "param": "task_id"}  # fmt: skip
    for unknown_id in ("task-unified-1757169743-8dxnm6yz", "task-unified-nonsense"):
        unknown = await api.client.get(f"/v1/tasks/{unknown_id}", headers=auth(key))
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "task_not_found"
    route = await api.client.get("/v1/nothing", headers=auth(key))
    assert route.status_code == 404 and route.json()["error"]["type"] == "not_found_error"


async def test_models_health_and_docs(api: Api) -> None:
    key = await api.key(group="vip")
    models = (await api.client.get("/v1/models", headers=auth(key))).json()["data"]
    assert models[0]["id"] == "kling-custom-element" and models[0]["billing_rule"] == "per_call"
    assert models[0]["user_group"] == "vip" and models[0]["price"] == 1
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/readyz")).json()["status"] == "ready"
    doc = (await api.client.get("/openapi.json")).json()
    assert "/v1/videos/generations" in doc["paths"] and "CustomElementParams" in doc["components"]["schemas"]
    metrics = (await api.client.get("/metrics")).text
    assert "reelgate_tasks_submitted" in metrics


async def test_estimated_time_learns_from_this_deployment(api: Api) -> None:
    key = await api.key(credits=10)
    first = (await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).json()
    assert first["task_info"]["estimated_time"] == api.rt.settings.default_estimated_time
    for _ in range(5):
        await api.wait(key, (await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).json()["id"])
    api.rt.service._eta.clear()
    later = (await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).json()
    assert later["task_info"]["estimated_time"] == 1  # local tasks take well under a second here


async def test_per_account_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    key = await api.key()
    acct = await api.rt.store.accounts.account_id("acme")
    assert acct is not None
    await api.rt.store.accounts.set_limits(acct, 2, None)
    await asyncio.sleep(1.1)  # the key cache picks the new limit up within its TTL
    answers = [await api.client.get("/v1/tasks", headers=auth(key)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"]["type"] == "rate_limit_error" and int(answers[2].headers["Retry-After"]) >= 1


async def test_metrics_move_as_tasks_run(api: Api) -> None:
    key = await api.key(credits=3)
    before = (await api.client.get("/metrics")).text
    assert 'reelgate_tasks_finished_total{code="",model="kling-custom-element",status="completed"}' not in before
    await api.wait(key, (await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).json()["id"])
    await api.client.get("/v1/tasks", headers=auth(key))
    finished = 'reelgate_tasks_finished_total{code="",model="kling-custom-element",status="completed"} 1.0'
    # Counted by the worker just after its commit, which a poll can see a moment earlier.
    for _ in range(100):
        after = (await api.client.get("/metrics")).text
        if finished in after:
            break
        await asyncio.sleep(0.02)
    assert finished in after
    assert 'reelgate_tasks_submitted_total{model="kling-custom-element"} 1.0' in after
    assert "reelgate_provider_call_seconds_count" in after and "reelgate_queue_depth" in after


async def test_old_idempotency_keys_are_forgotten(api: Api) -> None:
    key = await api.key(credits=3)
    first = await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)), **{"Idempotency-Key": "old"})
    await api.rt.store.db.write(lambda c: c.run("UPDATE idempotency SET created = created - 3 * 86400"))
    assert await api.rt.service.purge_idempotency() == 1
    again = await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)), **{"Idempotency-Key": "old"})
    assert again.json()["id"] != first.json()["id"]


async def test_an_idempotent_replay_counts_nothing(api: Api) -> None:
    key = await api.key(credits=2)
    body = image_body(b64_jpeg(1), b64_jpeg(2))
    for _ in range(3):
        await api.submit(key, body, **{"Idempotency-Key": "same"})
    page = (await api.client.get("/metrics")).text
    assert 'reelgate_tasks_submitted_total{model="kling-custom-element"} 1.0' in page
    assert 'reelgate_credits_total{kind="reserve"} 1.0' in page
