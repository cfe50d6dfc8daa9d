"""The fake Kling server's video endpoints, driven with plain httpx: routes, auth, element rules, results, scripts."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import av
import httpx
import jwt
import pytest

from fakes.kling_server import FakeKling
from fakes.kling_video import clip
from fakes.media_server import MediaServer
from fakes.mediagen import mp4

AK, SK = "ak-video-0123456789", "sk-video-SECRET-0123456789abcdef-0123456789"
AK_B, SK_B = "ak-video-bbbbbbbbbb", "sk-video-SECRET-bbbbbbbbbbbbbbbbbb-bbbbbbbb"
ELEMENTS = "/v1/general/advanced-custom-elements"


def bearer(ak: str = AK, sk: str = SK, *, age: float = 0.0) -> dict[str, str]:
    now = int(time.time() - age)
    return {"Authorization": "Bearer " + jwt.encode({"iss": ak, "exp": now + 1800, "nbf": now - 5}, sk)}


@pytest.fixture
def fake() -> Iterator[FakeKling]:
    with FakeKling(access_keys={AK: SK, AK_B: SK_B}, api_keys={"plain-key"}) as server:
        yield server


@pytest.fixture
def http(fake: FakeKling) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, headers=bearer(), timeout=10) as client:
        yield client


def make_element(http: httpx.Client, kind: str = "image_refer", headers: dict[str, str] | None = None) -> int:
    body: dict[str, Any] = {"element_name": "Fox", "element_description": "A fox", "reference_type": kind}
    if kind == "image_refer":
        body["element_image_list"] = {
            "frontal_image": "https://m/f.png",
            "refer_images": [{"image_url": "https://m/s"}],
        }
    else:
        body["element_video_list"] = {"refer_videos": [{"video_url": "https://m/v.mp4"}]}
    task_id = http.post(ELEMENTS, json=body, headers=headers).json()["data"]["task_id"]
    for _ in range(2):
        data = http.get(f"{ELEMENTS}/{task_id}", headers=headers).json()["data"]
    return int(data["task_result"]["elements"][0]["element_id"])


BODIES: dict[str, dict[str, Any]] = {
    "text2video": {"model_name": "kling-v3", "prompt": "A fox runs", "duration": "5", "mode": "std", "sound": "off"},
    "image2video": {"model_name": "kling-v3", "image": "https://m/first.png", "image_tail": "https://m/last.png"},
    "omni-video": {"model_name": "kling-v3-omni", "prompt": "A fox", "aspect_ratio": "1:1", "duration": "5"},
    "motion-control": {"image_url": "https://m/c.png", "video_url": "https://m/d.mp4", "character_orientation": "image"}
    | {"mode": "pro"},
}


def create(http: httpx.Client, kind: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return http.post(f"/v1/videos/{kind}", json=body, **kwargs)


def walk(http: httpx.Client, kind: str, task_ref: str) -> dict[str, Any]:
    """Poll until the task is final (the default schedule moves one step per poll)."""
    for _ in range(5):
        data: dict[str, Any] = http.get(f"/v1/videos/{kind}/{task_ref}").json()["data"]
        if data["task_status"] in ("succeed", "failed"):
            return data
    raise AssertionError(f"{task_ref} never finished")


def decode(data: bytes) -> tuple[float, str, int, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        assert frames > 0
        return container.duration / av.time_base, stream.codec_context.name, stream.width, stream.height


# -- routes and the status walk ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(BODIES))
def test_each_route_walks_submitted_processing_succeed(fake: FakeKling, http: httpx.Client, kind: str) -> None:
    answer = create(http, kind, {**BODIES[kind], "external_task_id": f"ext-{kind}"})
    created = answer.json()
    assert (answer.status_code, created["code"]) == (200, 0)
    assert set(created) == {"code", "message", "request_id", "data"}
    assert created["data"]["task_status"] == "submitted"
    task_id = created["data"]["task_id"]
    processing = http.get(f"/v1/videos/{kind}/{task_id}").json()["data"]
    done = http.get(f"/v1/videos/{kind}/ext-{kind}").json()["data"]
    assert (processing["task_status"], done["task_status"]) == ("processing", "succeed")
    assert done["task_info"] == {"external_task_id": f"ext-{kind}"} and done["task_id"] == task_id
    [video] = done["task_result"]["videos"]
    assert set(video) == {"id", "url", "duration"} and video["duration"] == "5"
    listed = http.get(f"/v1/videos/{kind}", params={"pageNum": 1, "pageSize": 10}).json()["data"]
    assert [t["task_id"] for t in listed] == [task_id]
    assert fake.video_create_count(f"ext-{kind}") == 1 and fake.requests("video_create")[0].json()["external_task_id"]


def test_a_task_is_found_only_on_its_own_endpoint_and_account(http: httpx.Client) -> None:
    create(http, "text2video", {**BODIES["text2video"], "external_task_id": "mine"})
    assert http.get("/v1/videos/omni-video/mine").json()["code"] == 1203
    other = http.get("/v1/videos/text2video/mine", headers=bearer(AK_B, SK_B))
    assert (other.status_code, other.json()["code"]) == (404, 1203)


def test_result_is_a_real_mp4_of_the_requested_duration_and_shape(http: httpx.Client) -> None:
    body = {**BODIES["text2video"], "duration": "7", "aspect_ratio": "9:16", "watermark_info": {"enabled": True}}
    task_id = create(http, "text2video", body).json()["data"]["task_id"]
    done = walk(http, "text2video", task_id)
    [video] = done["task_result"]["videos"]
    assert video["duration"] == "7" and done["watermark_info"] == {"enabled": True}
    plain, marked = httpx.get(video["url"]), httpx.get(video["watermark_url"])
    assert plain.status_code == marked.status_code == 200 and plain.headers["content-type"] == "video/mp4"
    seconds, codec, width, height = decode(plain.content)
    assert (codec, width, height) == ("h264", 180, 320) and seconds == pytest.approx(7, abs=0.3)
    assert decode(marked.content)[0] == pytest.approx(7, abs=0.3) and marked.content != plain.content


def test_an_edit_and_a_motion_transfer_last_as_long_as_their_input_video(http: httpx.Client) -> None:
    with MediaServer() as media:
        media.serve("/in.mp4", mp4(320, 180, seconds=4, fps=5), "video/mp4")
        edit = {"model_name": "kling-v3-omni", "prompt": "Make it night", "video_list": []}
        edit["video_list"] = [{"video_url": media.url("/in.mp4"), "refer_type": "base", "keep_original_sound": "no"}]
        motion = {**BODIES["motion-control"], "video_url": media.url("/in.mp4")}
        edited = create(http, "omni-video", edit).json()["data"]["task_id"]
        moved = create(http, "motion-control", motion).json()["data"]["task_id"]
    for kind, task_id in (("omni-video", edited), ("motion-control", moved)):
        [video] = walk(http, kind, task_id)["task_result"]["videos"]
        assert video["duration"] == "4"
        assert decode(httpx.get(video["url"]).content)[0] == pytest.approx(4, abs=0.3)


# -- auth --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, 1001),
        (bearer(AK, "wrong-secret-0123456789abcdef-0123456789"), 1000),
        (bearer(age=3600), 1004),
        ({"Authorization": "Bearer not.a.jwt"}, 1002),
    ],
)
def test_bad_auth_is_refused_like_the_element_routes(fake: FakeKling, headers: dict[str, str], code: int) -> None:
    answer = httpx.post(f"{fake.base_url}/v1/videos/text2video", json=BODIES["text2video"], headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (401, code)
    assert fake.video_tasks() == [] and fake.video_create_count() == 0


def test_a_plain_api_key_is_its_own_account(fake: FakeKling) -> None:
    headers = {"Authorization": "Bearer plain-key"}
    answer = httpx.post(f"{fake.base_url}/v1/videos/text2video", json=BODIES["text2video"], headers=headers)
    assert answer.json()["code"] == 0 and fake.video_tasks()[0].account == "plain-key"


# -- elements ----------------------------------------------------------------------------------------


def test_elements_must_live_in_the_callers_account(fake: FakeKling, http: httpx.Client) -> None:
    mine = make_element(http)
    body = {**BODIES["image2video"], "element_list": [{"element_id": mine}]}
    other = create(http, "image2video", body, headers=bearer(AK_B, SK_B))
    assert (other.status_code, other.json()["code"]) == (400, 1201)
    assert other.json()["message"] == f"element {mine} does not exist"
    assert create(http, "image2video", body).json()["code"] == 0


def test_unfinished_and_deleted_elements_do_not_exist(http: httpx.Client) -> None:
    element = make_element(http)
    http.post("/v1/general/delete-elements", json={"element_id": str(element)})
    body = {**BODIES["image2video"], "element_list": [{"element_id": element}]}
    assert create(http, "image2video", body).json()["message"] == f"element {element} does not exist"
    pending = {"element_name": "F", "element_description": "F", "reference_type": "video_refer"}
    pending["element_video_list"] = {"refer_videos": [{"video_url": "https://m/v.mp4"}]}
    http.post(ELEMENTS, json=pending)
    body["element_list"] = [{"element_id": element + 1}]
    assert create(http, "image2video", body).json()["message"] == f"element {element + 1} does not exist"


@pytest.mark.parametrize("bad", ["800000000000001", 800000000000001.0, True, None])
def test_an_element_id_must_be_a_json_integer(http: httpx.Client, bad: Any) -> None:
    make_element(http)
    body = {**BODIES["image2video"], "element_list": [{"element_id": bad}]}
    answer = create(http, "image2video", body).json()
    assert (answer["code"], answer["message"]) == (1201, "element_list[0].element_id must be an integer")


def test_element_types_allowed_per_endpoint(http: httpx.Client) -> None:
    picture, clip = make_element(http, "image_refer"), make_element(http, "video_refer")
    motion = {**BODIES["motion-control"], "character_orientation": "video"}
    refused = create(http, "motion-control", {**motion, "element_list": [{"element_id": picture}]}).json()
    assert refused["code"] == 1201 and "image_refer" in refused["message"]
    assert create(http, "motion-control", {**motion, "element_list": [{"element_id": clip}]}).json()["code"] == 0
    facing_image = {**motion, "character_orientation": "image", "element_list": [{"element_id": clip}]}
    assert create(http, "motion-control", facing_image).json()["code"] == 1201
    reference = [{"video_url": "https://m/r.mp4", "refer_type": "feature"}]
    omni = {**BODIES["omni-video"], "video_list": reference, "element_list": [{"element_id": clip}]}
    assert "video_refer" in create(http, "omni-video", omni).json()["message"]
    omni["element_list"] = [{"element_id": picture}]
    assert create(http, "omni-video", omni).json()["code"] == 0
    without_video = {**BODIES["omni-video"], "element_list": [{"element_id": clip}, {"element_id": picture}]}
    assert create(http, "omni-video", without_video).json()["code"] == 0


# -- body checks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "change", "words"),
    [
        ("text2video", {"prompt": "x" * 2501}, "prompt must be"),
        ("text2video", {"prompt": None}, "prompt is required"),
        ("text2video", {"mode": "max"}, "mode must be"),
        ("text2video", {"duration": 5}, "duration must be"),
        ("text2video", {"duration": "16"}, "duration must be"),
        ("text2video", {"model_name": "kling-v2-6", "duration": "7"}, "duration must be"),
        ("text2video", {"model_name": "kling-v9"}, "model_name must be"),
        ("text2video", {"sound": True}, "sound must be"),
        ("text2video", {"aspect_ratio": "4:3"}, "aspect_ratio must be"),
        ("text2video", {"watermark_info": {"enabled": "yes"}}, "watermark_info"),
        ("text2video", {"image_start": "https://m/x.png"}, "unknown parameter image_start"),
        ("text2video", {"multi_shot": True, "shot_type": "customize", "multi_prompt": []}, "multi_prompt"),
        ("image2video", {"image": None}, "image is required"),
        ("image2video", {"image": ""}, "image must be"),
        ("image2video", {"camera_control": {"type": "down_back"}}, "image_tail cannot be combined"),
        ("omni-video", {"aspect_ratio": None}, "aspect_ratio is required"),
        ("omni-video", {"image_list": [{"image_url": "https://m/e", "type": "end_frame"}]}, "needs a first_frame"),
        ("omni-video", {"image_list": [{"image_url": f"https://m/{n}"} for n in range(8)]}, "at most 7"),
        ("omni-video", {"video_list": [{"video_url": "https://m/v", "refer_type": "style"}]}, "video_list[0]"),
        ("motion-control", {"character_orientation": None}, "character_orientation is required"),
        ("motion-control", {"video_url": None}, "video_url is required"),
        ("motion-control", {"mode": None}, "mode is required"),
        ("motion-control", {"keep_original_sound": True}, "keep_original_sound must be"),
    ],
)
def test_malformed_bodies_answer_1201(http: httpx.Client, kind: str, change: dict[str, Any], words: str) -> None:
    body = {k: v for k, v in {**BODIES[kind], **change}.items() if v is not None}
    answer = create(http, kind, body)
    assert (answer.status_code, answer.json()["code"]) == (400, 1201)
    assert words in answer.json()["message"]


def test_multi_shot_durations_must_add_up(http: httpx.Client) -> None:
    shots = [{"index": 1, "prompt": "a", "duration": "2"}, {"index": 2, "prompt": "b", "duration": "3"}]
    body = {"model_name": "kling-v3", "duration": "5", "multi_shot": True, "shot_type": "customize"}
    assert create(http, "text2video", {**body, "multi_prompt": shots}).json()["code"] == 0
    assert "add up" in create(http, "text2video", {**body, "duration": "6", "multi_prompt": shots}).json()["message"]


def test_external_task_id_is_unique_per_account(fake: FakeKling, http: httpx.Client) -> None:
    body = {**BODIES["text2video"], "external_task_id": "task-1"}
    assert create(http, "text2video", body).json()["code"] == 0
    again = create(http, "omni-video", {**BODIES["omni-video"], "external_task_id": "task-1"}).json()
    assert (again["code"], again["message"]) == (1201, "external_task_id already exists")
    assert create(http, "text2video", body, headers=bearer(AK_B, SK_B)).json()["code"] == 0
    assert fake.video_create_count("task-1") == 3 and len(fake.video_tasks()) == 2


# -- result URLs -------------------------------------------------------------------------------------


def test_result_urls_are_signed_and_expire(fake: FakeKling, http: httpx.Client) -> None:
    fake.set_result_ttl(2.0)
    task_id = create(http, "text2video", BODIES["text2video"]).json()["data"]["task_id"]
    url = walk(http, "text2video", task_id)["task_result"]["videos"][0]["url"]
    assert httpx.get(url).status_code == 200
    assert httpx.get(url.replace("signature=", "signature=0")).status_code == 403
    assert httpx.get(url.replace("/video.mp4", "/other.mp4")).status_code == 404
    expires_ms = int(httpx.URL(url).params["expires"])
    time.sleep(max(0.0, expires_ms / 1000 - time.time()) + 0.05)
    expired = httpx.get(url)
    assert (expired.status_code, expired.text) == (403, "Request has expired")
    assert len(fake.requests("video_download")) == 4


def test_a_missing_result_answers_404_for_the_scripted_fetches(fake: FakeKling, http: httpx.Client) -> None:
    fake.missing_next_result(fetches=2)
    fake.missing_next_result()
    first = create(http, "text2video", BODIES["text2video"]).json()["data"]["task_id"]
    second = create(http, "text2video", BODIES["text2video"]).json()["data"]["task_id"]
    url = walk(http, "text2video", first)["task_result"]["videos"][0]["url"]
    assert [httpx.get(url).status_code for _ in range(3)] == [404, 404, 200]
    url = walk(http, "text2video", second)["task_result"]["videos"][0]["url"]
    assert [httpx.get(url).status_code for _ in range(3)] == [404, 404, 404]


def test_a_cut_result_hangs_up_halfway_then_serves_whole(fake: FakeKling, http: httpx.Client) -> None:
    fake.cut_next_result(fetches=1)
    task_id = create(http, "text2video", BODIES["text2video"]).json()["data"]["task_id"]
    url = walk(http, "text2video", task_id)["task_result"]["videos"][0]["url"]
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url)
    assert httpx.get(url).content == clip(5)


def test_a_trickled_result_arrives_slowly_and_whole(fake: FakeKling, http: httpx.Client) -> None:
    size = len(clip(5))
    fake.trickle_next_result(bytes_per_second=size * 2)  # about half a second for the whole file
    task_id = create(http, "text2video", BODIES["text2video"]).json()["data"]["task_id"]
    url = walk(http, "text2video", task_id)["task_result"]["videos"][0]["url"]
    started = time.monotonic()
    with httpx.stream("GET", url) as response:
        chunks = [len(chunk) for chunk in response.iter_raw()]
    assert 0.35 < time.monotonic() - started < 3 and sum(chunks) == size and len(chunks) >= 5


def test_a_huge_result_is_streamed_and_still_a_valid_mp4(fake: FakeKling, http: httpx.Client) -> None:
    fake.huge_next_result(megabytes=12)
    task_id = create(http, "text2video", BODIES["text2video"]).json()["data"]["task_id"]
    url = walk(http, "text2video", task_id)["task_result"]["videos"][0]["url"]
    with httpx.stream("GET", url) as response:
        assert int(response.headers["content-length"]) == 12 << 20
        body = b"".join(response.iter_raw())
    assert len(body) == 12 << 20 and decode(body)[0] == pytest.approx(5, abs=0.3)


# -- scripted failures -------------------------------------------------------------------------------


def test_queued_errors_on_create_and_get(fake: FakeKling, http: httpx.Client) -> None:
    fake.queue_error("video_create", 1301)
    fake.queue_error("video_create", 5001)
    policy, down = create(http, "text2video", BODIES["text2video"]), create(http, "text2video", BODIES["text2video"])
    assert (policy.status_code, policy.json()["code"]) == (400, 1301)
    assert (down.status_code, down.json()["code"]) == (503, 5001)
    task_id = create(http, "text2video", BODIES["text2video"]).json()["data"]["task_id"]
    fake.queue_error("video_get", 5001)
    assert http.get(f"/v1/videos/text2video/{task_id}").json()["code"] == 5001
    assert walk(http, "text2video", task_id)["task_status"] == "succeed"
    assert fake.video_create_count() == 3 and len(fake.video_tasks()) == 1


def test_a_failed_and_a_stalled_task(fake: FakeKling, http: httpx.Client) -> None:
    fake.fail_next_video("Content security policy triggered on the output")
    failed = create(http, "text2video", BODIES["text2video"]).json()["data"]["task_id"]
    fake.stall_next_video()
    stalled = create(http, "text2video", BODIES["text2video"]).json()["data"]["task_id"]
    done = walk(http, "text2video", failed)
    assert done["task_status"] == "failed" and done["task_result"] == {}
    assert done["task_status_msg"] == "Content security policy triggered on the output"
    statuses = {http.get(f"/v1/videos/text2video/{stalled}").json()["data"]["task_status"] for _ in range(6)}
    assert statuses == {"processing"} and fake.in_flight(AK) == 1
    fake.set_video_status(stalled, "succeed")
    assert http.get(f"/v1/videos/text2video/{stalled}").json()["data"]["task_result"]["videos"][0]["url"]


def test_a_dropped_create_is_stored_and_found_by_external_id(fake: FakeKling, http: httpx.Client) -> None:
    fake.drop_next_video_create()
    with pytest.raises(httpx.TransportError):
        create(http, "image2video", {**BODIES["image2video"], "external_task_id": "lost"})
    assert http.get("/v1/videos/image2video/lost").json()["data"]["task_status"] == "processing"
    assert fake.video_create_count("lost") == 1


# -- concurrency -------------------------------------------------------------------------------------


def test_the_concurrency_cap_counts_element_and_video_tasks_per_account(fake: FakeKling, http: httpx.Client) -> None:
    fake.set_concurrency(2)
    body = {"element_name": "F", "element_description": "F", "reference_type": "video_refer"}
    body["element_video_list"] = {"refer_videos": [{"video_url": "https://m/v.mp4"}]}
    element_task = http.post(ELEMENTS, json=body).json()["data"]["task_id"]
    first = create(http, "text2video", BODIES["text2video"]).json()["data"]["task_id"]
    busy = create(http, "text2video", BODIES["text2video"])
    assert (busy.status_code, busy.json()["code"]) == (429, 1303)
    assert http.post(ELEMENTS, json=body).json()["code"] == 1303
    assert create(http, "text2video", BODIES["text2video"], headers=bearer(AK_B, SK_B)).json()["code"] == 0
    walk(http, "text2video", first)
    assert create(http, "text2video", BODIES["text2video"]).json()["code"] == 0
    for _ in range(2):
        http.get(f"{ELEMENTS}/{element_task}")
    assert fake.in_flight(AK) == 1 and fake.max_in_flight(AK) == 2 and fake.max_in_flight(AK_B) == 1
    assert fake.cap_refusals(AK) == 2 and fake.cap_refusals(AK_B) == 0
    fake.set_concurrency(1, access_key=AK_B)
    assert create(http, "text2video", BODIES["text2video"], headers=bearer(AK_B, SK_B)).json()["code"] == 1303
    assert fake.max_in_flight() == 2 and fake.cap_refusals() == 3


def test_the_cap_follows_a_time_based_schedule(fake: FakeKling, http: httpx.Client) -> None:
    fake.set_schedule(polls_per_step=None, seconds_per_step=0.1)
    fake.set_concurrency(1)
    assert create(http, "omni-video", BODIES["omni-video"]).json()["code"] == 0
    assert create(http, "omni-video", BODIES["omni-video"]).json()["code"] == 1303
    time.sleep(0.3)
    assert create(http, "omni-video", BODIES["omni-video"]).json()["code"] == 0
    assert fake.max_in_flight(AK) == 1 and fake.state()["videos"]["max_in_flight"] == {AK: 1}


def test_the_control_endpoint_scripts_videos(fake: FakeKling, http: httpx.Client) -> None:
    control = f"{fake.base_url}/_fake/control"
    assert httpx.post(control, json={"action": "set_concurrency", "cap": 1}).json() == {"ok": True, "result": None}
    create(http, "text2video", BODIES["text2video"])
    assert create(http, "text2video", BODIES["text2video"]).json()["code"] == 1303
    answer = httpx.post(control, json={"action": "max_in_flight", "access_key": AK}).json()
    assert answer == {"ok": True, "result": 1}
