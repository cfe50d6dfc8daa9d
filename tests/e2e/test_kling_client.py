"""The Kling client against the fake Kling server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from fakes.kling_server import FIRST_ELEMENT_ID, FakeKling
from reelgate.providers.kling.api import KlingClient, KlingCredentials, KlingError, KlingTask
from reelgate.providers.kling.codes import map_failure

AK = "ak-e2e-0123456789abcdef0123456789ab"
SK = "sk-e2e-0123456789abcdef0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]


def image_body(external_task_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "element_name": "Red fox",
        "element_description": "A red fox plush toy",
        "reference_type": "image_refer",
        "element_image_list": {
            "frontal_image": "https://media.invalid/front.png",
            "refer_images": [{"image_url": "https://media.invalid/side.png"}],
        },
        "tag_list": [{"tag_id": "o_103"}],
        **extra,
    }
    if external_task_id:
        body["external_task_id"] = external_task_id
    return body


@pytest.fixture
def fake() -> Iterator[FakeKling]:
    with FakeKling(access_keys={AK: SK}, api_keys={"plain-api-key"}) as server:
        yield server


@pytest.fixture
async def client(fake: FakeKling) -> AsyncIterator[KlingClient]:
    async with KlingClient(fake.base_url, KlingCredentials(access_key=AK, secret_key=SK), timeout=2) as kling:
        yield kling


async def _poll_until_done(client: KlingClient, task_id: str) -> KlingTask:
    for _ in range(10):
        task = await client.get(task_id)
        assert task is not None
        if task.status in ("succeed", "failed"):
            return task
    raise AssertionError("the task never finished")


# -- the happy path ----------------------------------------------------------------------------------


async def test_create_get_by_external_id_and_status_progression(fake: FakeKling, client: KlingClient) -> None:
    created = await client.create(image_body("task-unified-1757169743-aaaaaaaa"))
    assert (created.status, created.external_task_id, created.element_ids) == (
        "submitted",
        "task-unified-1757169743-aaaaaaaa",
        [],
    )
    processing = await client.get("task-unified-1757169743-aaaaaaaa")
    done = await client.get(created.task_id)
    assert processing is not None and processing.status == "processing" and processing.state == "processing"
    assert done is not None and done.state == "completed" and done.element_ids == [FIRST_ELEMENT_ID]
    assert done.raw["task_result"]["elements"][0]["element_name"] == "Red fox"
    assert fake.create_count("task-unified-1757169743-aaaaaaaa") == 1


async def test_requests_carry_one_cached_valid_jwt(fake: FakeKling, client: KlingClient) -> None:
    created = await client.create(image_body("ext-jwt"))
    await client.get(created.task_id)
    tokens = {r.headers["authorization"].removeprefix("Bearer ") for r in fake.requests()}
    assert len(tokens) == 1
    claims = jwt.decode(tokens.pop(), SK, algorithms=["HS256"])
    assert claims["iss"] == AK and claims["exp"] - claims["nbf"] == 1805
    assert fake.requests("create")[0].json() == image_body("ext-jwt")


async def test_list_pages_newest_first(fake: FakeKling, client: KlingClient) -> None:
    for n in range(3):
        await client.create(image_body(f"ext-{n}"))
    first = await client.list(1, 2)
    second = await client.list(2, 2)
    assert [t.external_task_id for t in first] == ["ext-2", "ext-1"]
    assert [t.external_task_id for t in second] == ["ext-0"]
    assert fake.requests("list")[0].query == {"pageNum": ["1"], "pageSize": ["2"]}


async def test_get_unknown_task_is_none(client: KlingClient) -> None:
    assert await client.get("task-unified-0-nothere0") is None


async def test_delete_twice_is_idempotent(fake: FakeKling, client: KlingClient) -> None:
    created = await client.create(image_body("ext-del"))
    done = await _poll_until_done(client, created.task_id)
    await client.delete_element(done.element_ids[0])
    await client.delete_element(done.element_ids[0])
    deletes = fake.requests("delete")
    assert [r.json() for r in deletes] == [{"element_id": str(FIRST_ELEMENT_ID)}] * 2


async def test_plain_api_key_is_accepted(fake: FakeKling) -> None:
    async with KlingClient(fake.base_url, KlingCredentials(api_key="plain-api-key")) as kling:
        assert await kling.list(1, 10) == []
    assert fake.requests()[0].headers["authorization"] == "Bearer plain-api-key"


async def test_element_ids_above_2_53_stay_exact(fake: FakeKling, client: KlingClient) -> None:
    fake.queue_element_ids(2**63 - 7)
    created = await client.create(image_body("ext-big"))
    done = await _poll_until_done(client, created.task_id)
    assert done.element_ids == [2**63 - 7]
    await client.delete_element(2**63 - 7)
    assert fake.requests("delete")[0].json() == {"element_id": "9223372036854775801"}


async def test_failed_task_reports_policy_message(fake: FakeKling, client: KlingClient) -> None:
    fake.fail_next_task("Content security policy triggered by frontal image")
    created = await client.create(image_body("ext-fail"))
    done = await _poll_until_done(client, created.task_id)
    assert done.state == "failed" and done.element_ids == []
    assert map_failure(done.status_msg, None)[0] == "content_policy_violation"


# -- auth --------------------------------------------------------------------------------------------


class _ShiftedCredentials(KlingCredentials):
    """Credentials whose clock is off by ``shift`` seconds, to make expired or not-yet-valid tokens."""

    shift = 0.0

    def bearer(self, now: float) -> str:
        return super().bearer(now + self.shift)


class _Expired(_ShiftedCredentials):
    shift = -3600.0


class _Future(_ShiftedCredentials):
    shift = 600.0


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        (KlingCredentials(access_key=AK, secret_key="wrong-secret-0123456789abcdef012345"), 1000),
        (KlingCredentials(access_key="unknown-access-key", secret_key=SK), 1000),
        (KlingCredentials(api_key="not-a-key"), 1002),
        (_Expired(access_key=AK, secret_key=SK), 1004),
        (_Future(access_key=AK, secret_key=SK), 1003),
    ],
)
async def test_bad_credentials_are_rejected(fake: FakeKling, credentials: KlingCredentials, code: int) -> None:
    async with KlingClient(fake.base_url, credentials) as kling:
        with pytest.raises(KlingError) as caught:
            await kling.create(image_body("ext-auth"))
    token = fake.requests()[0].headers["authorization"].removeprefix("Bearer ")
    assert (caught.value.code, caught.value.http_status, caught.value.is_auth) == (code, 401, True)
    assert token not in str(caught.value) and token not in repr(caught.value)
    assert fake.create_count() == 0 and fake.tasks() == []


def test_missing_authorization_from_a_sync_client(fake: FakeKling) -> None:
    answer = httpx.get(fake.base_url + "/v1/general/advanced-custom-elements")
    assert answer.status_code == 401 and answer.json()["code"] == 1001


# -- errors ------------------------------------------------------------------------------------------

FLAGS = ("is_auth", "is_account", "is_retryable", "is_not_found", "is_policy", "is_bad_params", "is_ambiguous")
CODES = [
    *[(c, 401, "is_auth") for c in range(1000, 1005)],
    *[(c, 429, "is_account") for c in (1100, 1101, 1102)],
    (1103, 403, "is_account"),
    (1200, 400, "is_bad_params"),
    (1201, 400, "is_bad_params"),
    (1202, 404, None),
    (1203, 404, "is_not_found"),
    (1300, 400, "is_policy"),
    (1301, 400, "is_policy"),
    (1302, 429, "is_retryable"),
    (1303, 429, "is_retryable"),
    (1304, 429, None),
    (5000, 500, "is_retryable"),
    (5001, 503, "is_retryable"),
    (5002, 504, "is_retryable"),
]


@pytest.mark.parametrize(("code", "http_status", "flag"), CODES)
async def test_every_error_code_is_classified(
    fake: FakeKling, client: KlingClient, code: int, http_status: int, flag: str | None
) -> None:
    fake.queue_error("create", code)
    with pytest.raises(KlingError) as caught:
        await client.create(image_body("ext-err"))
    assert (caught.value.code, caught.value.http_status) == (code, http_status)
    assert [f for f in FLAGS if getattr(caught.value, f)] == ([flag] if flag else [])
    assert fake.tasks() == []


async def test_not_found_on_get_is_none_but_other_get_errors_raise(fake: FakeKling, client: KlingClient) -> None:
    fake.queue_error("get", 1203)
    fake.queue_error("get", 1202)
    assert await client.get("anything") is None
    with pytest.raises(KlingError) as caught:
        await client.get("anything")
    assert caught.value.code == 1202 and not caught.value.is_retryable


async def test_delete_errors_other_than_not_found_raise(fake: FakeKling, client: KlingClient) -> None:
    fake.queue_error("delete", 5001)
    with pytest.raises(KlingError) as caught:
        await client.delete_element(1)
    assert caught.value.is_retryable


async def test_invalid_body_is_refused_with_1201_naming_the_field(client: KlingClient) -> None:
    body = image_body("ext-bad", element_video_list={"refer_videos": [{"video_url": "https://media.invalid/v.mp4"}]})
    with pytest.raises(KlingError) as caught:
        await client.create(body)
    assert caught.value.code == 1201 and caught.value.is_bad_params
    assert "element_video_list" in caught.value.message


async def test_gateway_error_without_envelope_is_retryable(fake: FakeKling, client: KlingClient) -> None:
    fake.queue_raw("get", 502, "<html>502 Bad Gateway</html>", content_type="text/html")
    with pytest.raises(KlingError) as caught:
        await client.get("anything")
    assert (caught.value.code, caught.value.http_status, caught.value.is_retryable) == (None, 502, True)


async def test_drop_after_create_is_ambiguous_and_the_task_can_be_found(fake: FakeKling, client: KlingClient) -> None:
    fake.drop_next_create()
    with pytest.raises(KlingError) as caught:
        await client.create(image_body("task-unified-1-dropdrop"))
    assert caught.value.is_ambiguous and caught.value.request_sent and not caught.value.is_retryable
    assert fake.create_count("task-unified-1-dropdrop") == 1
    found = await client.get("task-unified-1-dropdrop")
    assert found is not None and found.external_task_id == "task-unified-1-dropdrop"


async def test_second_create_with_same_external_id_is_refused(fake: FakeKling, client: KlingClient) -> None:
    await client.create(image_body("ext-dup"))
    with pytest.raises(KlingError) as caught:
        await client.create(image_body("ext-dup"))
    assert caught.value.code == 1201
    assert fake.create_count("ext-dup") == 2 and len(fake.tasks()) == 1


async def test_timeout_is_ambiguous(fake: FakeKling) -> None:
    fake.stall("get", 5)
    async with KlingClient(fake.base_url, KlingCredentials(api_key="plain-api-key"), timeout=0.2) as kling:
        with pytest.raises(KlingError) as caught:
            await kling.get("anything")
    assert caught.value.is_ambiguous and caught.value.request_sent


async def test_connection_refused_was_never_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with KlingClient(f"http://127.0.0.1:{port}", KlingCredentials(api_key="k")) as kling:
        with pytest.raises(KlingError) as caught:
            await kling.list(1, 1)
    assert not caught.value.request_sent and caught.value.is_retryable and not caught.value.is_ambiguous


# -- the fake itself: callbacks and the subprocess entry point ---------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]]

    def do_POST(self) -> None:
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


async def test_callbacks_report_each_status_in_order() -> None:
    bodies: list[dict[str, Any]] = []
    handler = type("Receiver", (_Receiver,), {"bodies": bodies})
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=receiver.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/kling-callback"
    try:
        with FakeKling(api_keys={"k"}, polls_per_step=None, seconds_per_step=0.05, callbacks=True) as fake:
            async with KlingClient(fake.base_url, KlingCredentials(api_key="k")) as kling:
                await kling.create(image_body("ext-cb", callback_url=url))
            deadline = time.monotonic() + 5
            while len(fake.callbacks_sent()) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert [b["task_status"] for b in bodies] == ["processing", "succeed"]
    assert bodies[-1]["task_result"]["elements"][0]["element_id"] == FIRST_ELEMENT_ID


async def test_subprocess_entry_point_serves_and_is_scriptable() -> None:
    command = [sys.executable, "-m", "tests.fakes.kling_server", "--port", "0", "--access-key", AK, "--secret-key", SK]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        httpx.post(base_url + "/_fake/control", json={"action": "queue_element_ids", "ids": [2**63 - 7]})
        async with KlingClient(base_url, KlingCredentials(access_key=AK, secret_key=SK)) as kling:
            created = await kling.create(image_body("ext-sub"))
            done = await _poll_until_done(kling, created.task_id)
        state = httpx.post(base_url + "/_fake/control", json={"action": "state"}).json()["result"]
        assert done.element_ids == [2**63 - 7] and state["creates"] == {"ext-sub": 1}
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0
        if process.stdout is not None:
            process.stdout.close()
