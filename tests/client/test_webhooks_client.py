"""``client.webhooks`` and the webhook methods of ``client.tasks`` against a real ``reelgate serve``, blocking and
async: the secret's id, rotation (the next callback is signed with the new secret), resending a dead callback, and
tasks by error code."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, cast

import pytest

from client.live import jpeg, slow_images
from client.webhook_server import HookServer, dead_delivery, webhook_session_server
from fakes.receiver import Receiver
from reelgate_client import (
    AsyncReelgate,
    BadRequestError,
    CallbackDelivery,
    ConflictError,
    NotFoundError,
    Reelgate,
    Task,
    WebhookSecret,
    WebhookVerificationError,
    verify_webhook,
    webhook_secret_id,
)

SMALL = (320, 400)  # small pictures: a body under 64 KiB is parsed on the event loop, without the media pool


@pytest.fixture(scope="module")
def hooks_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> HookServer:
    return webhook_session_server(request.config, tmp_path_factory)


def _client(server: HookServer, account: str) -> Reelgate:
    return Reelgate(api_key=server.keys[account], base_url=server.base_url)


def _delivered(client: Reelgate, task_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = client.tasks.callbacks(task_id)
        if log.delivery is not None and log.delivery["status"] == "delivered":
            return log.raw
        time.sleep(0.05)
    raise AssertionError(f"the callback of {task_id} was not delivered")


def test_the_secret_is_read_by_id_and_rotated_and_the_next_callback_uses_the_new_one(hooks_server: HookServer) -> None:
    with _client(hooks_server, "hooks-sync") as client:
        current = client.webhooks.retrieve_secret()
        assert isinstance(current, WebhookSecret) and current.id.startswith("whk_") and current.secret is None
        assert "secret" not in current.raw and current.created <= time.time()
        old = client.webhooks.rotate_secret()
        new = client.webhooks.rotate_secret()
        assert old.secret and new.secret and old.secret != new.secret and new.id == webhook_secret_id(new.secret)
        assert new.id != current.id and new.matches(new.secret) and not new.matches(old.secret)
        again = client.webhooks.retrieve_secret()
        assert (again.id, again.secret, again.created) == (new.id, None, new.created)
        assert again.matches(new.secret)

        with Receiver() as hook:
            task = client.elements.create(name="Signed", description="after a rotation", frontal=jpeg(80, *SMALL),
                                          refer=[jpeg(81, *SMALL)], callback_url=hook.url())  # fmt: skip
            got = (hook.wait_for(1))[0]
        verify_webhook(got.body, got.headers, new.secret)
        with pytest.raises(WebhookVerificationError):
            verify_webhook(got.body, got.headers, old.secret)
        assert json.loads(got.body)["id"] == task.id


def test_a_dead_callback_is_resent_and_delivered_once_the_receiver_answers(hooks_server: HookServer) -> None:
    with _client(hooks_server, "hooks-sync") as client, Receiver(default=500) as hook:
        secret = client.webhooks.rotate_secret().secret
        assert secret is not None
        task_id = dead_delivery(hooks_server, hooks_server.keys["hooks-sync"], hook.url())
        assert len(hook.received) == 4
        hook.default = 200  # the receiver is fixed
        delivery = client.tasks.resend_callback(task_id)
        assert isinstance(delivery, CallbackDelivery) and delivery.task_id == task_id
        assert (delivery.status, delivery.attempts, delivery.resends) == ("pending", 4, 1)
        assert delivery.next_attempt is not None and delivery.finished_at is None and delivery.url == hook.url()
        log = _delivered(client, task_id)
        assert log["delivery"]["attempts"] == 5 and [a["status_code"] for a in log["data"]] == [500] * 4 + [200]
        assert {r.headers["webhook-id"] for r in hook.received} == {delivery.id}
        verify_webhook(hook.received[-1].body, hook.received[-1].headers, secret)

        with pytest.raises(ConflictError) as delivered:
            client.tasks.resend_callback(task_id)
        assert delivered.value.code == "callback_already_delivered"
        with _client(hooks_server, "hooks-other") as other, pytest.raises(NotFoundError) as foreign:
            other.tasks.resend_callback(task_id)  # another tenant's task is unknown to them
        assert foreign.value.code == "task_not_found"


def test_tasks_are_listed_by_error_code(hooks_server: HookServer) -> None:
    with _client(hooks_server, "hooks-sync") as client, slow_images(jpeg(91)) as (_slow, url):
        held = client.elements.create(name="Held", description="waits on a URL", frontal=jpeg(90, *SMALL), refer=[url])
        cancelled = client.tasks.cancel(held)
        broken = client.elements.create(name="Broken", description="a missing picture", frontal=jpeg(92, *SMALL),
                                        refer=[f"{hooks_server.base_url}/assets/{'0' * 64}.jpg"])  # fmt: skip
        failed = _failed(client, broken)
        assert failed.error is not None and failed.error.code == "image_processing_error"
        page = client.tasks.list(error_code="request_cancelled", limit=100)
        assert [t.id for t in page.data] == [cancelled.id]
        assert [t.id for t in client.tasks.list(error_code="image_processing_error")] == [broken.id]
        assert [t.id for t in client.tasks.list(status="failed", error_code="request_cancelled")] == [cancelled.id]
        with pytest.raises(BadRequestError) as bad:
            client.tasks.list(error_code=cast(Any, "cancelled"))
        assert bad.value.param == "error_code" and "request_cancelled" in str(bad.value)


def _failed(client: Reelgate, task: Task) -> Task:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        current = client.tasks.retrieve(task)
        if current.done:
            return current
        time.sleep(0.05)
    raise AssertionError(f"{task.id} did not finish")


async def test_the_async_client_reads_rotates_resends_and_filters(hooks_server: HookServer) -> None:
    async with AsyncReelgate(api_key=hooks_server.keys["hooks-async"], base_url=hooks_server.base_url) as client:
        rotated = await client.webhooks.rotate_secret()
        assert rotated.secret is not None
        current = await client.webhooks.retrieve_secret()
        assert current.id == rotated.id and current.secret is None and current.matches(rotated.secret)
        with Receiver(default=503) as hook:
            key = hooks_server.keys["hooks-async"]
            task_id = await asyncio.to_thread(dead_delivery, hooks_server, key, hook.url())
            hook.default = 200
            delivery = await client.tasks.resend_callback(task_id)
            assert (delivery.status, delivery.resends) == ("pending", 1)
            got = await asyncio.to_thread(hook.wait_for, 5)
        verify_webhook(got[-1].body, got[-1].headers, rotated.secret)
        with pytest.raises(ConflictError):
            await client.tasks.resend_callback(task_id)  # delivered (or, for an instant, still pending)
        assert [t.id async for t in client.tasks.list(error_code="request_cancelled")] == []
        assert [t.id async for t in client.tasks.list(error_code=None, status="completed")] == [task_id]
