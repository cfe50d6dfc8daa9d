"""The blocking client against a real ``reelgate serve``: create, wait, list, cancel, errors, idempotency, retries."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.live import LiveServer, flaky_proxy, free_port, jpeg, slow_images
from fakes.mediagen import mp4
from reelgate.callbacks import new_secret, signed_headers
from reelgate_client import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientQuotaError,
    MediaInputError,
    NotFoundError,
    RateLimitError,
    Reelgate,
    ReelgateError,
    ServiceUnavailableError,
    Task,
    TaskFailedError,
    WaitTimeoutError,
    WebhookVerificationError,
    verify_webhook,
)


@pytest.fixture
def client(server: LiveServer, api_key: str) -> Iterator[Reelgate]:
    with Reelgate(api_key=api_key, base_url=server.base_url) as c:
        yield c


def _create(client: Reelgate, scene: int = 10) -> Task:
    return client.elements.create(
        name="Rover", description="a test character", frontal=jpeg(scene), refer=[jpeg(scene + 1)]
    )


def test_create_from_file_paths_and_wait_reports_progress(client: Reelgate, images: tuple[Path, Path, Path]) -> None:
    front, side, back = images
    task = client.elements.create(
        name="Rover",
        description="from files",
        frontal=front,
        refer=[str(side), back],
        tags=["o_102"],
    )
    assert task.status in ("pending", "processing") and task.id.startswith("task-unified-")
    assert task.usage is not None and task.usage.credits_reserved == 1 and task.can_cancel

    seen: list[Task] = []
    done = client.tasks.wait(task.id, timeout=30, on_progress=seen.append)

    assert done.status == "completed" and done.progress == 100 and done.done
    progress = [t.progress for t in seen]
    assert progress == sorted(progress) and progress[-1] == 100 and seen[-1].status == "completed"
    result = done.result
    assert result is not None and isinstance(result.element_id, str) and result.element_id.isdigit()
    assert (result.element_name, result.tags, result.voice_id) == ("Rover", ("o_102",), None)
    assert len(result.refer_images) == 2 and result.frontal_image and result.frontal_image.startswith("http")
    assert done.usage is not None and done.usage.credits_charged == 1
    assert client.tasks.retrieve(done.id) == done and done.raw["result_data"]["element_id"] == result.element_id


def test_create_from_a_720p_video_with_a_voice(client: Reelgate, tmp_path: Path) -> None:
    """A video element (1280x720, 5 s: EvoLink's newer rule) carries its voice id through to the result."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(mp4(1280, 720, seconds=5.0, fps=2))
    task = client.elements.create(name="Talker", description="from a clip", video=clip, voice_id="voice-1")
    done = client.tasks.wait(task, timeout=30)
    assert done.status == "completed" and done.result is not None
    assert (done.result.reference_type, done.result.voice_id) == ("video_refer", "voice-1")
    assert done.result.video_url is not None and done.result.video_url.endswith(".mp4")


def test_a_voice_on_an_image_element_is_a_bad_request(client: Reelgate) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.elements.create(name="Mute", description="images", frontal=jpeg(5), refer=[jpeg(6)], voice_id="v-1")
    assert (caught.value.code, caught.value.param) == ("invalid_parameter", "model_params.element_voice_id")


def test_create_from_bytes_data_uri_and_bare_base64(client: Reelgate) -> None:
    bare = base64.b64encode(jpeg(22)).decode()
    data_uri = "data:image/jpeg;base64," + base64.b64encode(jpeg(21)).decode()
    task = client.elements.create(name="Bytes", description="inline media", frontal=jpeg(20), refer=[data_uri, bare])
    done = client.tasks.wait(task, timeout=30)
    assert done.result is not None and len(done.result.refer_images) == 2


def test_media_urls_are_sent_as_is(client: Reelgate) -> None:
    first = client.tasks.wait(_create(client, scene=30), timeout=30)
    assert first.result is not None and first.result.frontal_image
    # The stored copies of the first element are URLs the server fetches itself (loopback is allowed here).
    task = client.elements.create(
        name="Again", description="from URLs", frontal=first.result.frontal_image, refer=first.result.refer_images[0]
    )
    assert task.raw["id"] and client.tasks.wait(task, timeout=30).status == "completed"


def test_a_missing_file_fails_before_any_request(client: Reelgate, tmp_path: Path) -> None:
    with pytest.raises(MediaInputError, match="no such file"):
        client.elements.create(name="x", description="y", frontal=tmp_path / "nope.jpg", refer=[jpeg(1)])


def test_list_pages_and_iterates_every_task(server: LiveServer, keys: dict[str, str]) -> None:
    key = keys["pages"]
    with Reelgate(api_key=key, base_url=server.base_url) as client:
        created = [client.tasks.wait(_create(client, scene=40 + 2 * i), timeout=30).id for i in range(3)]
        first = client.tasks.list(limit=2)
        assert len(first.data) == 2 and first.has_more and first.last_id == first.data[-1].id
        second = first.get_next_page()
        assert [t.id for t in second.data] == created[:1] and not second.has_more
        assert [t.id for t in first] == created[::-1]  # newest first, across pages
        assert [t.id for t in client.tasks.list(status="completed", model="kling-custom-element", limit=1)] == created[
            ::-1
        ]
        assert client.tasks.list(status="failed").data == []


def test_cancel_of_a_finished_task_is_a_conflict(client: Reelgate) -> None:
    done = client.tasks.wait(_create(client, scene=50), timeout=30)
    with pytest.raises(ConflictError) as caught:
        client.tasks.cancel(done.id)
    error = caught.value
    assert (error.status_code, error.code, error.type, error.param) == (
        409,
        "task_not_cancellable",
        "conflict_error",
        "task_id",
    )


def test_wait_timeout_then_cancel_then_wait_raises_task_failed(server: LiveServer, api_key: str) -> None:
    with slow_images(jpeg(61)) as (_slow, url), Reelgate(api_key=api_key, base_url=server.base_url) as client:
        task = client.elements.create(name="Slow", description="waits on a URL", frontal=jpeg(60), refer=[url])
        with pytest.raises(WaitTimeoutError) as timed_out:
            client.tasks.wait(task, timeout=0.6)
        assert timed_out.value.task.id == task.id and not timed_out.value.task.done

        cancelled = client.tasks.cancel(task)
        assert cancelled.status == "failed" and cancelled.error is not None
        assert cancelled.error.code == "request_cancelled" and not cancelled.can_cancel
        with pytest.raises(TaskFailedError) as failed:
            client.tasks.wait(task.id, timeout=5)
        assert failed.value.code == "request_cancelled" and failed.value.task.usage
        assert failed.value.task.usage.credits_charged == 0
    assert server.ledger("shared", task.id) == [("release", 1.0), ("reserve", 1.0)]  # reserved once, released in full


def test_a_failed_task_raises_task_failed_with_its_code(client: Reelgate, server: LiveServer) -> None:
    task = client.elements.create(
        name="Bad", description="a missing URL", frontal=jpeg(70), refer=[f"{server.base_url}/assets/{'0' * 64}.jpg"]
    )
    with pytest.raises(TaskFailedError) as failed:
        client.tasks.wait(task, timeout=30)
    assert failed.value.code == "image_processing_error" and failed.value.task.error is not None


def test_invalid_field_is_a_bad_request_naming_the_param(client: Reelgate) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.elements.create(name="x" * 21, description="too long a name", frontal=jpeg(1), refer=[jpeg(2)])
    error = caught.value
    assert (error.status_code, error.code, error.type) == (400, "invalid_parameter", "invalid_request_error")
    assert error.param == "model_params.element_name"
    assert str(error) == (
        "model_params.element_name must be 1-20 characters (invalid_parameter, param model_params.element_name)"
    )


def test_bad_task_id_and_unknown_ids(client: Reelgate) -> None:
    with pytest.raises(BadRequestError) as bad:
        client.tasks.retrieve("not-a-task")
    assert bad.value.code == "invalid_task_id" and bad.value.param == "task_id"
    with pytest.raises(NotFoundError) as missing:
        client.tasks.retrieve("task-unified-1700000000-abcdefgh")
    assert missing.value.status_code == 404 and missing.value.type == "not_found_error"
    with pytest.raises(NotFoundError):
        client.elements.retrieve("123456789")


def test_authentication_and_quota_errors(
    server: LiveServer, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        Reelgate(api_key="rg_not-a-real-key", base_url=server.base_url) as client,
        pytest.raises(AuthenticationError) as denied,
    ):
        client.models.list()
    assert denied.value.status_code == 401 and denied.value.type == "authentication_error"

    with Reelgate(api_key=keys["broke"], base_url=server.base_url) as client:
        with pytest.raises(InsufficientQuotaError) as poor:
            _create(client)
        assert poor.value.status_code == 402 and poor.value.type == "insufficient_quota_error"
        assert client.tasks.list().data == []  # nothing was created

    monkeypatch.delenv("REELGATE_API_KEY", raising=False)
    with pytest.raises(ReelgateError, match="REELGATE_API_KEY"):
        Reelgate(base_url=server.base_url)


def test_environment_configures_the_client(server: LiveServer, api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELGATE_API_KEY", api_key)
    monkeypatch.setenv("REELGATE_BASE_URL", server.base_url + "/")
    with Reelgate() as client:
        assert client.base_url == server.base_url
        models = client.models.list()
    assert (models[0].id, models[0].billing_rule, models[0].price) == ("kling-custom-element", "per_call", 1.0)
    # The video models are listed whether or not this deployment has the upstream channel they need.
    assert all(m.billing_rule == "per_second" for m in models[1:])


def _sent_twice(client: Reelgate) -> str:
    """The same create sent twice by hand, as a client does when the first answer was lost; the task id."""
    params = {
        "element_name": "Once",
        "element_description": "idempotent",
        "reference_type": "image_refer",
        "element_image_list": {
            "frontal_image": base64.b64encode(jpeg(80)).decode(),
            "refer_images": [{"image_url": base64.b64encode(jpeg(81)).decode()}],
        },
    }
    body = {"model": "kling-custom-element", "model_params": params}
    first = client.request("POST", "/v1/videos/generations", json=body, idempotency_key="order-42")
    again = client.request("POST", "/v1/videos/generations", json=body, idempotency_key="order-42")
    assert first["id"] == again["id"]
    with pytest.raises(ConflictError) as reused:
        other = {**body, "model_params": {**params, "element_name": "Twice"}}
        client.request("POST", "/v1/videos/generations", json=other, idempotency_key="order-42")
    assert reused.value.code == "idempotency_key_reused"
    return str(first["id"])


def test_retried_creates_are_charged_once(server: LiveServer, keys: dict[str, str]) -> None:
    with flaky_proxy(server.base_url) as (proxy, url), Reelgate(api_key=keys["idem"], base_url=url) as client:
        by_hand = _sent_twice(client)
        proxy.plan = ["drop"]  # the server creates the task, but its answer never reaches the client
        lost = client.elements.create(
            name="Lost", description="answer dropped once", frontal=jpeg(90), refer=[jpeg(91)]
        )
        posts = [s.headers["idempotency-key"] for s in proxy.seen if s.method == "POST"][-2:]
        assert len(proxy.seen) == 5 and posts[0] == posts[1]  # 3 by hand, then the lost create retried once
        fresh = _create(client, scene=92)  # a new logical create gets a new key
        assert proxy.seen[-1].headers["idempotency-key"] not in ("order-42", posts[0])
        for task_id in (by_hand, lost.id, fresh.id):
            client.tasks.wait(task_id, timeout=30)
        assert [t.id for t in client.tasks.list()] == [fresh.id, lost.id, by_hand]
    assert server.balance("idem") == {"available": 2, "reserved": 0, "captured": 3}
    assert server.ledger("idem", lost.id) == [("capture", 1.0), ("reserve", 1.0)]  # one reservation, captured once


def test_retries_honour_retry_after_and_give_up_after_max_retries(server: LiveServer, api_key: str) -> None:
    with flaky_proxy(server.base_url) as (proxy, url):
        with Reelgate(api_key=api_key, base_url=url, max_retries=2) as client:
            proxy.plan, proxy.retry_after = ["429"], "1"
            started = time.monotonic()
            assert client.models.list()
            assert time.monotonic() - started >= 0.95 and len(proxy.seen) == 2

            proxy.plan, proxy.retry_after = ["503", "503", "503"], "0"
            with pytest.raises(ServiceUnavailableError) as unavailable:
                client.models.list()
            assert unavailable.value.status_code == 503 and len(proxy.seen) == 5

        with Reelgate(api_key=api_key, base_url=url, max_retries=0) as client:
            proxy.plan, proxy.retry_after = ["429"], "7"
            with pytest.raises(RateLimitError) as limited:
                client.models.list()
            assert limited.value.retry_after == 7 and len(proxy.seen) == 6


def test_connection_errors_and_timeouts(server: LiveServer, api_key: str) -> None:
    with Reelgate(api_key=api_key, base_url=f"http://127.0.0.1:{free_port()}", max_retries=1) as client:
        with pytest.raises(APIConnectionError) as refused:
            client.models.list()
        assert not isinstance(refused.value, APITimeoutError) and "cannot reach" in str(refused.value)
    with flaky_proxy(server.base_url) as (proxy, url):
        proxy.plan, proxy.stall_seconds = ["stall"], 1.0
        with (
            Reelgate(api_key=api_key, base_url=url, timeout=0.3, max_retries=0) as client,
            pytest.raises(APITimeoutError),
        ):
            client.models.list()


def test_elements_list_retrieve_delete(client: Reelgate) -> None:
    ids = []
    for scene in (100, 102, 104):
        done = client.tasks.wait(_create(client, scene=scene), timeout=30)
        assert done.result is not None
        ids.append(done.result.element_id)
    page = client.elements.list(limit=2)
    walked = [e.element_id for e in page]  # every page, fetched as the iteration goes
    assert page.has_more and len(page.data) == 2 and set(ids) <= set(walked) and len(set(walked)) == len(walked)
    element = client.elements.retrieve(ids[0])
    assert (element.id, element.element_id, element.element_name) == (ids[0], ids[0], "Rover")
    assert element.task_id.startswith("task-unified-") and element.frontal_image
    gone = client.elements.delete(ids[0])
    assert gone.id == ids[0] and gone.deleted
    with pytest.raises(NotFoundError):
        client.elements.retrieve(ids[0])
    remaining = {e.element_id for e in client.elements.list(limit=100)}
    assert ids[0] not in remaining and set(ids[1:]) <= remaining


def test_webhook_verifier_is_re_exported() -> None:
    secret, body = new_secret(), b'{"id": "task-unified-1-abcdefgh"}'
    headers = signed_headers(secret, "msg_1", int(time.time()), body)
    verify_webhook(body, headers, secret)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body + b" ", headers, secret)


def test_credits_are_the_keys_and_the_accounts(server: LiveServer) -> None:
    """``client.credits.retrieve()`` reads ``GET /v1/credits``: a new key of a new account has spent nothing."""
    done = server.cli("keys", "create", "--account", "credits-view", "--credits", "2.5")
    assert done.returncode == 0, done.stderr
    with Reelgate(api_key=done.stdout.strip(), base_url=server.base_url) as client:
        credits = client.credits.retrieve()
    assert (credits.remaining, credits.used, credits.unlimited) == (2.5, 0.0, False)
    assert (credits.account_remaining, credits.account_used) == (2.5, 0.0)
    assert credits.raw["success"] is True
