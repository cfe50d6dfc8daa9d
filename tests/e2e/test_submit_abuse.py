"""Refused Base64 submits against a real server, on both engines: every refusal comes before any media is stored,
and what a submit stored is removed when it makes no task (issue 18, item 3).

Each body goes two ways through the service: a small one (under 64 KiB) is parsed on the event loop and only its
media go to the media pool; a large one is parsed in the pool. Both are tried where the path could matter.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fakes import mediagen
from fakes.media_server import MediaServer
from harness import image_body, make_settings
from served import Served, serve

MB = 1024 * 1024
SIZES = {"small": (300, 300, 70), "large": (768, 1024, 90)}  # a body under / over the 64 KiB parse limit


def picture(scene: int, size: str = "large") -> str:
    width, height, quality = SIZES[size]
    return _b64(mediagen.jpeg(width, height, scene=scene, quality=quality))


def _b64(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def body(size: str, *scenes: int, **params: Any) -> dict[str, Any]:
    first, *rest = scenes or (1, 2)
    return image_body(picture(first, size), *(picture(s, size) for s in rest), **params)


@pytest.fixture
async def served(tmp_path: Path, db_url: str) -> AsyncIterator[Served]:
    async with serve(make_settings(tmp_path, db_url, max_body_bytes=64 * MB)) as running:
        yield running


async def _nothing_stored(served: Served) -> None:
    assert served.stored_files() == [], "a refused submit left files in the asset store"
    assert await served.asset_rows() == {}


@pytest.mark.parametrize("size", ["small", "large"])
async def test_a_key_without_credits_writes_nothing_and_decodes_nothing(served: Served, size: str) -> None:
    key = await served.key("broke", credits=0)
    async with served.client(key) as client:
        for _ in range(3):
            answer = await client.post("/v1/videos/generations", json=body(size, 1, 2, 3, 4))
            assert answer.status_code == 402, answer.text
            assert answer.json()["error"]["code"] == "insufficient_credits"
    await _nothing_stored(served)
    assert not served.rt.service.media.started  # refused before any decoding: the media pool never started


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize(
    ("case", "param"),
    [
        ("near_duplicate", "model_params.element_image_list.refer_images[0].image_url"),
        ("too_small", "model_params.element_image_list.refer_images[0].image_url"),
        ("not_an_image", "model_params.element_image_list.frontal_image"),
        ("bad_callback", "callback_url"),
    ],
)
async def test_an_invalid_submit_leaves_no_files(served: Served, size: str, case: str, param: str) -> None:
    key = await served.key("acme")
    request = body(size, 1, 2)
    images = request["model_params"]["element_image_list"]
    if case == "near_duplicate":
        images["refer_images"][0]["image_url"] = picture(1, size)
    elif case == "too_small":
        images["refer_images"][0]["image_url"] = _b64(mediagen.jpeg(200, 200, scene=3))
    elif case == "not_an_image":
        images["frontal_image"] = _b64(b"GIF89a" + bytes(range(256)) * 40)
    else:
        request["callback_url"] = "https://example.com/" + "a" * 3000  # longer than the 2048 allowed
    async with served.client(key) as client:
        answer = await client.post("/v1/videos/generations", json=request)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    await _nothing_stored(served)


async def test_the_in_flight_cap_refuses_before_decoding(served: Served) -> None:
    key = await served.key("busy", credits=10)
    acct = await served.rt.store.accounts.account_id("busy")
    assert acct is not None
    await served.rt.store.accounts.set_limits(acct, None, 1)
    with MediaServer() as media:
        media.stall("/slow.jpg")  # the first task's fetch hangs: it stays in flight
        async with served.client(key) as client:
            first = await client.post("/v1/videos/generations", json=image_body(media.url("/slow.jpg"),
                                                                                media.url("/slow2.jpg")))  # fmt: skip
            assert first.status_code == 200, first.text
            answer = await client.post("/v1/videos/generations", json=body("large", 1, 2))
            assert answer.status_code == 429 and answer.json()["error"]["code"] == "too_many_tasks_in_flight"
            await client.post(f"/v1/tasks/{first.json()['id']}/cancel")
    await _nothing_stored(served)
    assert not served.rt.service.media.started


async def test_a_submit_that_loses_the_reservation_race_removes_its_files(served: Served) -> None:
    """Credits for one task, two submits at once: both pass the pre-check, both store their media, one is refused
    by the reservation and removes what it wrote; only the made task's files stay."""
    key = await served.key("one-credit", credits=1)
    async with served.client(key) as client:
        answers = await asyncio.gather(*(client.post("/v1/videos/generations", json=body("large", s, s + 10))
                                         for s in (1, 2)))  # fmt: skip
    assert sorted(a.status_code for a in answers) == [200, 402], [a.text for a in answers]
    made = next(a.json()["id"] for a in answers if a.status_code == 200)
    rows = await served.asset_rows()
    assert set(rows.values()) == {made} and len(rows) == 2
    assert served.stored_files() == sorted(rows)


async def test_an_idempotent_replay_stores_nothing_more(served: Served) -> None:
    key = await served.key("acme", credits=5)
    request = body("large", 1, 2)
    async with served.client(key, **{"Idempotency-Key": "one"}) as client:
        first = await client.post("/v1/videos/generations", json=request)
        stored = served.stored_files()
        again = await client.post("/v1/videos/generations", json=request)
        other = await client.post("/v1/videos/generations", json=body("large", 3, 4))
    assert first.status_code == again.status_code == 200 and first.json()["id"] == again.json()["id"]
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert len(stored) == 2 and served.stored_files() == stored
    assert set((await served.asset_rows()).values()) == {first.json()["id"]}


async def test_a_cancelled_task_loses_its_uploads(served: Served) -> None:
    key = await served.key("acme")
    async with served.client(key) as client:
        task = (await client.post("/v1/videos/generations", json=body("large", 1, 2))).json()
        assert len(served.stored_files()) == 2
        cancelled = await client.post(f"/v1/tasks/{task['id']}/cancel")
    if cancelled.status_code == 200:  # not already finished by the worker
        assert served.stored_files() == []
        assert (await served.rt.service.sweep_assets()) == 0  # rows wait out the grace period, files are gone
