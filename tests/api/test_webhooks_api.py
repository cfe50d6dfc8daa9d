"""Tenants manage their own webhooks, against a real server on loopback on SQLite and on PostgreSQL, with a real
callback receiver: the secret's id and its rotation (the next callback verifies with the new secret), resending a
dead delivery (a new round of retries, the same webhook-id), every refusal (404 for another tenant's task, 409 for
each state that cannot be resent, 429 past the per-account limit), and the task list by error code."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from client.live import jpeg, slow_images
from client.webhook_server import FAST_RETRIES, HookServer, dead_delivery, element_body, threaded_server
from dbs import truncate
from fakes.receiver import Receiver
from reelgate.api.openapi_webhooks import webhook_schemas
from reelgate.domain import TASK_ERROR_CODES
from reelgate.store.migrate import upgrade
from reelgate.webhook_service import secret_id
from reelgate_client import WebhookVerificationError, verify_webhook, webhook_secret_id

ACCOUNTS = {name: 10 for name in ("rotor", "resender", "refused", "intruder", "limited", "bystander", "lister")}
SCHEMAS = webhook_schemas()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HookServer]:
    """One server per engine for the module; each test uses accounts of its own."""
    folder = tmp_path_factory.mktemp(f"webhooks-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'reelgate.db'}"
        upgrade(url)
    else:
        url = request.getfixturevalue("pg_session_url")
        asyncio.run(truncate(url))
    with threaded_server(folder, url, ACCOUNTS) as server:
        yield server


@pytest.fixture
def http(live: HookServer) -> Iterator[Any]:
    """A client for an account: ``http("rotor")``."""
    clients: list[httpx.Client] = []

    def make(account: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {live.keys[account]}"}
        clients.append(httpx.Client(base_url=live.base_url, headers=headers, timeout=30))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def _wait_task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.get(f"/v1/tasks/{task_id}").json()
        if task["status"] in ("completed", "failed"):
            return task
        time.sleep(0.03)
    raise AssertionError(f"{task_id} did not finish")


def _wait_delivery(client: httpx.Client, task_id: str, status: str, attempts: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log: dict[str, Any] = client.get(f"/v1/tasks/{task_id}/callbacks").json()
        if log["delivery"]["status"] == status and len(log["data"]) == attempts:
            return log
        time.sleep(0.03)
    raise AssertionError(f"the delivery of {task_id} did not become {status} after {attempts} attempts: {log}")


def _documented(schema: str, body: dict[str, Any]) -> None:
    """The answer is what the OpenAPI document says it is (api/openapi_webhooks.py)."""
    Draft202012Validator(SCHEMAS[schema]).validate(body)


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"], error
    return error


def test_the_secret_is_shown_by_id_and_a_rotation_signs_the_next_callback(live: HookServer, http: Any) -> None:
    client = http("rotor")
    first = client.get("/v1/webhooks/secret")
    assert first.status_code == 200 and set(first.json()) == {"object", "id", "created"}, first.text
    assert first.json()["object"] == "webhook_secret" and first.json()["id"].startswith("whk_")
    assert abs(first.json()["created"] - time.time()) < 120
    _documented("WebhookSecret", first.json())

    old = client.post("/v1/webhooks/secret/rotate")
    new = client.post("/v1/webhooks/secret/rotate")
    assert new.status_code == 200 and new.headers["cache-control"] == "no-store", new.text
    secret = new.json()["secret"]
    assert secret.startswith("whsec_") and secret != old.json()["secret"]
    assert new.json()["id"] == secret_id(secret) == webhook_secret_id(secret) != first.json()["id"]
    assert new.json()["created"] >= first.json()["created"]
    _documented("WebhookSecretRotated", new.json())
    again = client.get("/v1/webhooks/secret")
    assert again.json() == {"object": "webhook_secret", "id": new.json()["id"], "created": new.json()["created"]}
    assert secret not in again.text and "whsec_" not in again.text

    with Receiver() as hook:
        task = client.post("/v1/videos/generations", json=element_body(hook.url(), scene=50)).json()
        got = hook.wait_for(1)[0]
    verify_webhook(got.body, got.headers, secret)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(got.body, got.headers, old.json()["secret"])
    assert json.loads(got.body)["id"] == task["id"]
    assert httpx.get(live.base_url + "/v1/webhooks/secret").status_code == 401
    assert httpx.post(live.base_url + "/v1/webhooks/secret/rotate").status_code == 401


def test_a_dead_delivery_is_resent_as_a_new_round_and_delivered(live: HookServer, http: Any) -> None:
    client = http("resender")
    secret = client.post("/v1/webhooks/secret/rotate").json()["secret"]
    with Receiver(default=500) as hook:
        task_id = dead_delivery(live, live.keys["resender"], hook.url())
        dead = _wait_delivery(client, task_id, "dead", 4)
        assert "next_attempt" not in dead["delivery"] and dead["delivery"]["resends"] == 0

        resent = client.post(f"/v1/tasks/{task_id}/callbacks/resend")
        assert resent.status_code == 202, resent.text
        body = resent.json()
        assert (body["object"], body["status"], body["attempts"], body["resends"]) == ("callback_delivery",
                                                                                       "pending", 4, 1)  # fmt: skip
        assert body["id"] == dead["delivery"]["id"] and body["task_id"] == task_id and body["in_flight"] is False
        assert body["next_attempt"].startswith(time.strftime("%Y-", time.gmtime())) and body["finished_at"] is None
        _documented("CallbackDelivery", body)
        _documented("CallbackDelivery", dead["delivery"])  # the delivery log shows the same object
        # The receiver still fails: a whole new round, retried after each delay again, then dead again.
        again = _wait_delivery(client, task_id, "dead", 8)
        assert [a["attempt"] for a in again["data"]] == list(range(1, 9))
        starts = [r.at for r in hook.received[4:8]]
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert len(gaps) == 3 and all(g >= d * 0.9 for g, d in zip(gaps, FAST_RETRIES, strict=True)), gaps

        hook.default = 200  # the receiver is fixed
        assert client.post(f"/v1/tasks/{task_id}/callbacks/resend").json()["resends"] == 2
        log = _wait_delivery(client, task_id, "delivered", 9)
    assert log["data"][-1]["status_code"] == 200 and log["delivery"]["attempts"] == 9
    assert {r.headers["webhook-id"] for r in hook.received} == {body["id"]} and len(hook.received) == 9
    last = hook.received[-1]
    verify_webhook(last.body, last.headers, secret)
    assert json.loads(last.body) == client.get(f"/v1/tasks/{task_id}").json()
    error = _error(client.post(f"/v1/tasks/{task_id}/callbacks/resend"), 409, "callback_already_delivered")
    assert error["type"] == "conflict_error" and error["param"] == "task_id" and "already delivered" in error["message"]


def test_what_cannot_be_resent_is_refused_saying_why(live: HookServer, http: Any) -> None:
    client, intruder = http("refused"), http("intruder")
    with Receiver(default=500) as hook:
        dead_id = dead_delivery(live, live.keys["refused"], hook.url())
    # Another tenant's task is unknown to the intruder, word for word as an id that does not exist.
    foreign = _error(intruder.post(f"/v1/tasks/{dead_id}/callbacks/resend"), 404, "task_not_found")
    unknown_id = dead_id[:-8] + "zzzzzzzz"
    unknown = _error(intruder.post(f"/v1/tasks/{unknown_id}/callbacks/resend"), 404, "task_not_found")
    assert foreign == {**unknown, "message": unknown["message"].replace(unknown_id, dead_id)}
    _error(client.post("/v1/tasks/nope/callbacks/resend"), 400, "invalid_task_id")

    plain = _wait_task(client, client.post("/v1/videos/generations", json=element_body(scene=60)).json()["id"])
    assert "without a callback_url" in _error(client.post(f"/v1/tasks/{plain['id']}/callbacks/resend"), 409,
                                              "no_callback_url")["message"]  # fmt: skip
    with slow_images(jpeg(61, 320, 400)) as (_slow, url), Receiver([0.8]) as stalling:
        body = element_body(stalling.url(), scene=62)
        body["model_params"]["element_image_list"]["refer_images"] = [{"image_url": url}]  # type: ignore[index]
        held = client.post("/v1/videos/generations", json=body).json()["id"]
        _error(client.post(f"/v1/tasks/{held}/callbacks/resend"), 409, "task_not_finished")
        assert client.post(f"/v1/tasks/{held}/cancel").json()["status"] == "failed"
        stalling.wait_for(1)  # the receiver holds the first attempt for 0.8 s
        pending = _error(client.post(f"/v1/tasks/{held}/callbacks/resend"), 409, "callback_pending")
        assert "under way" in pending["message"] and "dead" in pending["message"]
        _wait_delivery(client, held, "delivered", 1)


def test_resends_are_limited_per_account_with_retry_after(http: Any) -> None:
    client, bystander = http("limited"), http("bystander")
    unknown = "/v1/tasks/task-unified-1700000000-00000000/callbacks/resend"
    assert [client.post(unknown).status_code for _ in range(5)] == [404] * 5
    limited = client.post(unknown)
    error = _error(limited, 429, "rate_limit_exceeded")
    assert error["type"] == "rate_limit_error" and "5 a minute per account" in error["message"]
    assert 1 <= int(limited.headers["retry-after"]) <= 12 and f"retry in {limited.headers['retry-after']} s" in error[
        "message"]  # fmt: skip
    assert bystander.post(unknown).status_code == 404  # another account has its own budget
    assert client.get("/v1/tasks").status_code == 200  # and the limited account's other requests are not counted


def test_tasks_are_listed_by_error_code(live: HookServer, http: Any) -> None:
    client = http("lister")
    with slow_images(jpeg(71, 320, 400)) as (_slow, url):
        cancelled = []
        for scene in (72, 74):
            body = element_body(scene=scene)
            body["model_params"]["element_image_list"]["refer_images"] = [{"image_url": url}]  # type: ignore[index]
            task_id = client.post("/v1/videos/generations", json=body).json()["id"]
            assert client.post(f"/v1/tasks/{task_id}/cancel").json()["error"]["code"] == "request_cancelled"
            cancelled.insert(0, task_id)  # newest first
    broken_body = element_body(scene=76)
    broken_body["model_params"]["element_image_list"]["refer_images"] = [  # type: ignore[index]
        {"image_url": f"{live.base_url}/assets/{'0' * 64}.jpg"}
    ]
    broken = _wait_task(client, client.post("/v1/videos/generations", json=broken_body).json()["id"])
    assert broken["error"]["code"] == "image_processing_error"
    _wait_task(client, client.post("/v1/videos/generations", json=element_body(scene=78)).json()["id"])

    def ids(query: str) -> list[str]:
        page = client.get(f"/v1/tasks?{query}")
        assert page.status_code == 200, page.text
        return [t["id"] for t in page.json()["data"]]

    assert ids("error_code=request_cancelled") == cancelled
    assert ids("error_code=image_processing_error") == [broken["id"]]
    assert ids("status=failed&error_code=request_cancelled") == cancelled
    assert ids("status=completed&error_code=request_cancelled") == []
    assert ids("error_code=generation_timeout") == []
    first = client.get("/v1/tasks?error_code=request_cancelled&limit=1").json()
    assert [t["id"] for t in first["data"]] == cancelled[:1] and first["has_more"] and first["last_id"] == cancelled[0]
    assert ids(f"error_code=request_cancelled&limit=1&after={first['last_id']}") == cancelled[1:]

    for query in ("error_code=cancelled", "error_code=", "error_code=request_cancelled&error_code=service_error"):
        error = _error(client.get(f"/v1/tasks?{query}"), 400, "invalid_parameter")
        assert error["param"] == "error_code" and "error_code" in error["message"], error
    listed = _error(client.get("/v1/tasks?error_code=REQUEST_CANCELLED"), 400, "invalid_parameter")["message"]
    assert all(code in listed for code in TASK_ERROR_CODES) and listed.index("content_policy") < listed.index("unknown")
