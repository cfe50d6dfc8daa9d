"""Deleting an element whose first upstream delete happened but whose answer was lost: the retry must succeed
(Kling answers a repeated delete with 400 and code 1201, "Element already be deleted"), not answer 502 forever."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes.kling_server import FakeKling
from kling.harness import AK, SK, api_key, channel, params, serve_app, settings_for, write_config
from procs import free_port
from reelgate.providers.kling.api import DELETE_PATH, KlingClient, KlingCredentials, KlingError


async def _completed_element(client: httpx.AsyncClient, key: dict[str, str], images: tuple[str, str]) -> str:
    body = {"model": "kling-custom-element", "model_params": params(images)}
    task = (await client.post("/v1/videos/generations", json=body, headers=key)).json()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found: dict[str, Any] = (await client.get(f"/v1/tasks/{task['id']}", headers=key)).json()
        if found["status"] == "completed":
            return str(found["result_data"]["element_id"])
        assert found["status"] != "failed", found
        await asyncio.sleep(0.05)
    raise AssertionError("the element was not created in time")


@pytest.mark.parametrize("lost", [None, 500, 503], ids=["dropped", "http500", "http503"])
async def test_a_delete_whose_answer_was_lost_succeeds_on_retry(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str], lost: int | None
) -> None:
    config = write_config(tmp_path / "kling.json", [channel("main", fake)])
    async with serve_app(settings_for(tmp_path, db_url, config), free_port(), dispatcher=False) as (client, rt):
        key = await api_key(rt)
        element_id = await _completed_element(client, key, images)
        fake.lose_next_delete(http_status=lost)  # Kling deletes it, and we never hear so
        first = await client.delete(f"/v1/elements/{element_id}", headers=key)
        assert first.status_code == 502 and first.json()["error"]["code"] == "upstream_delete_failed"
        assert (await client.get(f"/v1/elements/{element_id}", headers=key)).status_code == 200  # nothing changed
        retried = await client.delete(f"/v1/elements/{element_id}", headers=key)
        assert retried.status_code == 200, retried.text
        assert retried.json() == {"object": "element", "id": element_id, "deleted": True}
        assert (await client.get(f"/v1/elements/{element_id}", headers=key)).status_code == 404
        assert (await client.delete(f"/v1/elements/{element_id}", headers=key)).status_code == 404
    answers = [r.json() for r in fake.requests("delete")]
    assert answers == [{"element_id": element_id}] * 2  # the retry reached Kling; the third stopped here


async def test_a_repeated_delete_is_answered_as_kling_does_and_taken_as_done(
    fake: FakeKling, images: tuple[str, str]
) -> None:
    credentials = KlingCredentials(access_key=AK, secret_key=SK)
    async with KlingClient(fake.base_url, credentials) as kling:
        created = await kling.create({**params(images), "external_task_id": "task-unified-1700000000-0delete0"})
        while (task := await kling.get(created.task_id)) is not None and task.state != "completed":
            await asyncio.sleep(0.01)
        assert task is not None
        element_id = task.element_ids[0]
        await kling.delete_element(element_id)
        auth = {"Authorization": f"Bearer {credentials.bearer(time.time())}"}
        async with httpx.AsyncClient() as raw:
            again = await raw.post(fake.base_url + DELETE_PATH, json={"element_id": str(element_id)}, headers=auth)
        assert again.status_code == 400 and again.json()["code"] == 1201
        assert again.json()["message"] == f"Element already be deleted for id: {element_id}"
        await kling.delete_element(element_id)  # that answer means "already gone": done, not an error
        fake.queue_error("delete", 1201, message="element_id must be an integer or a decimal string")
        with pytest.raises(KlingError) as caught:  # any other 1201 is still a refusal
            await kling.delete_element(element_id)
    assert caught.value.code == 1201 and caught.value.is_bad_params
