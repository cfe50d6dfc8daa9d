"""Create exactly once, charge once: the Kling provider against the fake Kling server, a real worker and store."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import jwt
import pytest

from fakes.kling_server import FakeKling
from kling.harness import AK, PRICE, SK, channel, gateway, params, settings_for, until, write_config

BIG_ID = 2**63 - 7


def _config(tmp_path: Path, fake: FakeKling, **options: object) -> str:
    return write_config(tmp_path / "kling.json", [channel("main", fake)], **options)


async def test_happy_path_exact_64_bit_id_one_create_one_charge(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.queue_element_ids(BIG_ID)
    async with gateway(settings_for(tmp_path, db_url, _config(tmp_path, fake))) as gate:
        task_id = await gate.submit(params(images))
        task = await gate.wait(task_id)
        assert task.status == "completed", (task.error_code, task.error_message)
        assert task.result is not None and task.result["element_id"] == str(BIG_ID) == "9223372036854775801"
        assert task.charged == PRICE and await gate.ledger() == {"grant": 50 * PRICE, "reserve": PRICE,
                                                                 "capture": PRICE}  # fmt: skip
        element = await gate.rt.store.elements.get(str(BIG_ID), gate.owner.account_id)
        assert element is not None and element.upstream_id == f"main:{BIG_ID}"
    assert fake.create_count(task_id) == 1 and len(fake.tasks()) == 1
    create = fake.requests("create")[0]
    body = create.json()
    assert body["external_task_id"] == task_id and body["tag_list"] == [{"tag_id": "o_103"}]
    # media_handoff "base64" (the default): Kling gets the bytes we checked, not a URL it may not reach.
    assert body["element_image_list"] == {"frontal_image": images[0], "refer_images": [{"image_url": images[1]}]}
    assert base64.b64decode(body["element_image_list"]["frontal_image"])[:3] == b"\xff\xd8\xff"
    token = create.headers["authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, SK, algorithms=["HS256"])["iss"] == AK
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert SK not in logged and token not in logged


async def test_rate_limit_and_internal_error_are_retried_without_a_second_task(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str]
) -> None:
    fake.queue_error("create", 1302)
    fake.queue_error("create", 5000)
    async with gateway(settings_for(tmp_path, db_url, _config(tmp_path, fake))) as gate:
        task = await gate.wait(await gate.submit(params(images)))
        assert task.status == "completed"
        assert (await gate.ledger())["capture"] == PRICE
    assert len(fake.requests("create")) == 3 and len(fake.tasks()) == 1
    # Before every repeat, the task was looked up by our id (a 5000 may still have created it).
    routes = [r.route for r in fake.requests()]
    assert routes[:5] == ["create", "get", "create", "get", "create"]
    assert fake.requests("get")[0].path.endswith(task.id)


async def test_create_answer_lost_is_adopted_by_lookup(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str]
) -> None:
    fake.drop_next_create()
    async with gateway(settings_for(tmp_path, db_url, _config(tmp_path, fake))) as gate:
        task = await gate.wait(await gate.submit(params(images)))
        assert task.status == "completed"
        assert await gate.ledger() == {"grant": 50 * PRICE, "reserve": PRICE, "capture": PRICE}
    assert len(fake.requests("create")) == 1 and len(fake.tasks()) == 1
    assert task.result is not None and task.result["element_id"] == str(fake.tasks()[0].element_id)


async def test_ambiguous_timeout_is_resolved_by_lookup_not_a_second_create(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str]
) -> None:
    fake.stall("create", 1.0)
    config = _config(tmp_path, fake, request_timeout=0.3)
    async with gateway(settings_for(tmp_path, db_url, config)) as gate:
        task = await gate.wait(await gate.submit(params(images)))
        assert task.status == "completed"
    # Requests are recorded on arrival, so a blind second create would show here even while the first stalls.
    assert len(fake.requests("create")) == 1 and len(fake.tasks()) == 1


async def test_process_stopped_mid_create_resumes_on_a_new_runtime(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str]
) -> None:
    fake.stall("create", 1.0)
    settings = settings_for(tmp_path, db_url, _config(tmp_path, fake))
    async with gateway(settings) as gate:
        task_id = await gate.submit(params(images))
        await until(lambda: len(fake.requests("create")) == 1)
    # The first process is gone with its lease still held; Kling finishes the create it was sent.
    await until(lambda: len(fake.tasks()) == 1)
    async with gateway(settings) as gate:
        task = await gate.wait(task_id, timeout=15)
        assert task.status == "completed"
        assert await gate.ledger() == {"grant": 50 * PRICE, "reserve": PRICE, "capture": PRICE}
    assert len(fake.requests("create")) == 1 and len(fake.tasks()) == 1
    assert [r.route for r in fake.requests()][:2] == ["create", "get"]
    assert fake.requests("get")[0].path.endswith(task_id)  # the new process looked our id up first


async def test_failed_upstream_task_is_mapped_and_refunded(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str]
) -> None:
    fake.fail_next_task("Content security policy triggered for request id 7f3a9c0d1e2b")
    async with gateway(settings_for(tmp_path, db_url, _config(tmp_path, fake))) as gate:
        task = await gate.wait(await gate.submit(params(images)))
        assert (task.status, task.error_code, task.charged) == ("failed", "content_policy_violation", 0)
        assert "7f3a9c0d1e2b" not in (task.error_message or "")
        assert await gate.ledger() == {"grant": 50 * PRICE, "reserve": PRICE, "release": PRICE}
    assert len(fake.requests("create")) == 1


@pytest.mark.parametrize(("code", "expected"), [(1301, "content_policy_violation"), (1201, "invalid_parameters")])
async def test_refused_create_fails_without_retry(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str], code: int, expected: str
) -> None:
    fake.queue_error("create", code)
    async with gateway(settings_for(tmp_path, db_url, _config(tmp_path, fake))) as gate:
        task = await gate.wait(await gate.submit(params(images)))
        assert (task.status, task.error_code) == ("failed", expected)
        assert (await gate.ledger())["release"] == PRICE
    assert len(fake.requests("create")) == 1 and fake.tasks() == []


async def test_media_failing_preflight_costs_no_upstream_call(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str]
) -> None:
    bad = params(images)
    bad["element_image_list"]["refer_images"] = [{"image_url": "http://127.0.0.1:9/side.jpg"}]  # nothing listens
    async with gateway(settings_for(tmp_path, db_url, _config(tmp_path, fake))) as gate:
        task = await gate.wait(await gate.submit(bad))
        assert (task.status, task.error_code) == ("failed", "image_processing_error")
        assert (await gate.ledger())["release"] == PRICE
    assert fake.requests() == []


async def test_url_handoff_gives_kling_our_stored_copies(
    tmp_path: Path, db_url: str, fake: FakeKling, images: tuple[str, str]
) -> None:
    config = _config(tmp_path, fake, media_handoff="url")
    settings = settings_for(tmp_path, db_url, config, public_base_url="https://gw.example.test")
    async with gateway(settings) as gate:
        task = await gate.wait(await gate.submit(params(images)))
        assert task.status == "completed" and task.result is not None
    sent = fake.requests("create")[0].json()["element_image_list"]
    assert sent["frontal_image"] == task.result["element_image_list"]["frontal_image"]
    assert sent["frontal_image"].startswith("https://gw.example.test/assets/") and sent["frontal_image"].endswith(
        ".jpg"
    )
