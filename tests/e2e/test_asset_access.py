"""Stored media over real HTTP, on both engines: capability URLs nobody can work out from a picture or list, revoked
with their element, results gone (410) after their retention, ranges and validators, and only the contract's JSON
for every refusal (issue 18, items 7 and 13; issue 22)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from fakes import mediagen
from fakes.media_server import MediaServer
from harness import image_body, make_settings
from reelgate import service as service_module
from reelgate.assets import new_name
from reelgate.store.db import Conn
from served import Served, serve
from store.factories import new_task

MB = 1024 * 1024
EXTS = ("jpg", "png", "mp4", "mov")


def _uri(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


@pytest.fixture
async def served(tmp_path: Path, db_url: str) -> AsyncIterator[Served]:
    async with serve(make_settings(tmp_path, db_url, max_body_bytes=64 * MB)) as running:
        yield running


def _paths(element: dict[str, Any]) -> list[str]:
    images = element["element_image_list"]
    urls = [images["frontal_image"], *(r["image_url"] for r in images["refer_images"])]
    return [urlsplit(u).path for u in urls]


async def _element(served: Served, client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post("/v1/videos/generations", json=body)
    assert answer.status_code == 200, answer.text
    task = await served.wait(client, answer.json()["id"])
    assert task["status"] == "completed", task
    result: dict[str, Any] = task["result_data"]
    return result


def _json_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == code and {"message", "type"} <= error.keys()
    return error


async def test_an_upload_is_served_by_capability_and_the_picture_hash_says_nothing(served: Served) -> None:
    front, side = mediagen.jpeg(768, 1024, scene=1), mediagen.jpeg(768, 1024, scene=2)
    key = await served.key("acme")
    async with served.client(key) as client:
        element = await _element(served, client, image_body(_uri(front), _uri(side)))
    async with served.client() as anyone:  # no key: the URL is the capability
        for path, data in zip(_paths(element), (front, side), strict=True):
            assert path.startswith("/assets/") and hashlib.sha256(data).hexdigest() not in path
            got = await anyone.get(path)
            assert got.status_code == 200 and got.content == data
            assert got.headers["cache-control"] == "private, max-age=300, immutable"
            assert got.headers["content-type"] == "image/jpeg" and got.headers["x-content-type-options"] == "nosniff"
        for ext in EXTS:  # someone uploaded this very picture: its hash must not find it
            oracle = await anyone.head(f"/assets/{hashlib.sha256(front).hexdigest()}.{ext}")
            assert oracle.status_code == 404
            _json_error(await anyone.get(f"/assets/{hashlib.sha256(front).hexdigest()}.{ext}"), 404,
                        "asset_not_found")  # fmt: skip


async def test_deleting_an_element_revokes_its_media_but_not_another_elements(served: Served) -> None:
    """Two elements made from the same pictures own separate files: deleting one leaves the other's served."""
    front, side = mediagen.jpeg(768, 1024, scene=3), mediagen.jpeg(768, 1024, scene=4)
    key = await served.key("acme")
    async with served.client(key) as client:
        first = await _element(served, client, image_body(_uri(front), _uri(side)))
        second = await _element(served, client, image_body(_uri(front), _uri(side)))
        assert set(_paths(first)).isdisjoint(_paths(second))
        gone = await client.delete(f"/v1/elements/{first['element_id']}")
        assert gone.status_code == 200, gone.text
        for path in _paths(first):
            _json_error(await client.get(path), 404, "asset_not_found")
            assert (await client.head(path)).status_code == 404
        for path, data in zip(_paths(second), (front, side), strict=True):
            assert (await client.get(path)).content == data
    names = {p.rsplit("/", 1)[-1] for p in _paths(second)}
    assert set(served.stored_files()) == names and set(await served.asset_rows()) == names


async def _pending_for_an_hour(served: Served, acct: int, params: dict[str, Any]) -> str:
    """A free task of ``acct`` that stays pending (due in an hour, so this deployment's worker leaves it alone)."""
    task = new_task(acct, price=0, **params)
    values = {"id": task.id, "a": acct, "created": task.created, "now": task.now, "later": task.now + 3600,
              "deadline": task.deadline, "params": json.dumps(task.params)}  # fmt: skip

    async def work(c: Conn) -> None:
        await c.run("UPDATE accounts SET in_flight = in_flight + 1 WHERE id = :a", values)
        await c.run("INSERT INTO tasks (id, account_id, api_key_id, model, provider, status, created, created_at, "
                    "updated_at, deadline, run_after, params, price, user_group, billing_rule, estimated_time) VALUES "
                    "(:id, :a, 1, 'kling-custom-element', 'local', 'pending', :created, :now, :now, :deadline, "
                    ":later, :params, 0, 'default', 'per_call', 30)", values)  # fmt: skip

    await served.rt.store.db.write(work)
    return task.id


async def test_an_element_image_a_live_task_names_outlives_the_element_until_the_task_ends(served: Served) -> None:
    """Deleting an element keeps the one image a pending task of the account names by URL (a video task's first
    frame, say), serving it for that task, and removes the rest at once; the sweep takes the kept one once the task
    has ended."""
    front, side = mediagen.jpeg(768, 1024, scene=13), mediagen.jpeg(768, 1024, scene=14)
    key = await served.key("acme")
    async with served.client(key) as client:
        element = await _element(served, client, image_body(_uri(front), _uri(side)))
        kept, removed = _paths(element)
        acct = await served.rt.store.accounts.account_id("acme")
        assert acct is not None
        video = await _pending_for_an_hour(served, acct, {"image_start": f"{served.base}{kept}"})
        assert (await client.delete(f"/v1/elements/{element['element_id']}")).status_code == 200
        assert (await client.get(kept)).content == front
        _json_error(await client.get(removed), 404, "asset_not_found")
        assert await served.rt.service.sweep_assets() == 0
        assert (await client.post(f"/v1/tasks/{video}/cancel")).status_code == 200
        assert (await client.get(kept)).content == front  # until the sweep
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(service_module, "ASSET_GRACE", -1.0)
            assert await served.rt.service.sweep_assets() == 1
        _json_error(await client.get(kept), 404, "asset_not_found")
    assert served.stored_files() == [] and await served.asset_rows() == {}


async def test_fetched_media_copies_go_with_their_element(served: Served) -> None:
    """The worker's copies of URL media are registered to the task too, and deleted with the element."""
    key = await served.key("acme")
    with MediaServer() as media:
        media.serve("/front.jpg", mediagen.jpeg(768, 1024, scene=5), "image/jpeg")
        media.serve("/side.jpg", mediagen.jpeg(768, 1024, scene=6), "image/jpeg")
        async with served.client(key) as client:
            element = await _element(served, client, image_body(media.url("/front.jpg"), media.url("/side.jpg")))
            assert len(served.stored_files()) == 2 and len(await served.asset_rows()) == 2
            assert (await client.delete(f"/v1/elements/{element['element_id']}")).status_code == 200
    assert served.stored_files() == [] and await served.asset_rows() == {}


async def test_ranges_validators_and_head(served: Served) -> None:
    data = mediagen.jpeg(768, 1024, scene=7)
    size = len(data)
    key = await served.key("acme")
    async with served.client(key) as client:
        path = _paths(await _element(served, client, image_body(_uri(data), _uri(mediagen.jpeg(768, 1024,
                                                                                             scene=8)))))[0]  # fmt: skip
    async with served.client() as c:
        first = await c.get(path, headers={"Range": "bytes=0-99"})
        assert first.status_code == 206 and first.content == data[:100]
        assert first.headers["content-range"] == f"bytes 0-99/{size}" and first.headers["content-length"] == "100"
        assert (await c.get(path, headers={"Range": "bytes=-50"})).content == data[-50:]
        assert (await c.get(path, headers={"Range": f"bytes=100-{size * 2}"})).content == data[100:]
        # Not one valid bytes range; a number too long for int() (over 4,300 digits) was a 500.
        for ignored in ("bytes=abc", "items=0-1", "bytes=0-1,5-9", "bytes=9-3", "bytes=" + "9" * 5000 + "-"):
            whole = await c.get(path, headers={"Range": ignored})
            assert whole.status_code == 200 and whole.content == data, ignored
        for beyond in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
            refused = await c.get(path, headers={"Range": beyond})
            assert _json_error(refused, 416, "range_not_satisfiable")["param"] == "Range"
            assert refused.headers["content-range"] == f"bytes */{size}"
        full = await c.get(path)
        assert full.headers["accept-ranges"] == "bytes" and full.headers["content-length"] == str(size)
        etag = full.headers["etag"]
        assert (await c.get(path, headers={"If-None-Match": etag})).status_code == 304
        stale = await c.get(path, headers={"Range": "bytes=0-9", "If-Range": '"another"'})
        assert stale.status_code == 200 and stale.content == data
        assert (await c.get(path, headers={"Range": "bytes=0-9", "If-Range": etag})).status_code == 206
        head = await c.head(path)
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(size)


async def test_the_sweep_removes_what_a_submit_cut_off_before_its_commit_left(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed between storing a submit's files and making its task leaves registered files of a task that
    never existed: the worker's hourly sweep removes them once the grace period is over, and nothing in use."""
    key = await served.key("acme")
    async with served.client(key) as client:
        element = await _element(served, client, image_body(_uri(mediagen.jpeg(768, 1024, scene=9)),
                                                            _uri(mediagen.jpeg(768, 1024, scene=10))))  # fmt: skip
    acct = await served.rt.store.accounts.account_id("acme")
    assert acct is not None
    orphans = await served.rt.service.assets.save([(b"cut off", "jpg")], account_id=acct,
                                                  task_id="task-unified-1757169743-cutoff00")  # fmt: skip
    assert await served.rt.service.sweep_assets() == 0  # within the grace period: maybe a submit under way
    monkeypatch.setattr(service_module, "ASSET_GRACE", -1.0)
    assert await served.rt.service.sweep_assets() == 1
    assert orphans[0] not in served.stored_files()
    assert set(served.stored_files()) == {p.rsplit("/", 1)[-1] for p in _paths(element)}


async def test_a_result_answers_410_once_its_retention_is_over(served: Served) -> None:
    """A result's name carries its expiry: served until then, 410 ``asset_expired`` after, with when and why, from
    the name alone (so a swept one answers the same). A made-up name with a past expiry learns nothing more."""
    assets = served.rt.service.assets
    fresh, stale = new_name("mp4", assets.result_expiry()), new_name("mp4", int(time.time()) - 1)
    for name in (fresh, stale):
        await assets.storage.put(name, b"\x00\x00\x00\x18ftypmp42 a result")
    async with served.client() as anyone:
        assert (await anyone.get(f"/assets/{fresh}")).status_code == 200
        for method in ("GET", "HEAD"):
            assert (await anyone.request(method, f"/assets/{stale}")).status_code == 410
        error = _json_error(await anyone.get(f"/assets/{stale}"), 410, "asset_expired")
        assert error["type"] == "not_found_error"
        assert "expired at" in error["message"] and "kept 30 days" in error["message"]
        forged = "A" * 32 + f"-e{int(time.time()) - 60}.mp4"
        _json_error(await anyone.get(f"/assets/{forged}"), 410, "asset_expired")
        _json_error(await anyone.get("/assets/" + "A" * 32 + f"-e{int(time.time()) + 60}.mp4"), 404,
                    "asset_not_found")  # fmt: skip


async def test_another_tenant_can_neither_list_nor_find_an_accounts_media(served: Served) -> None:
    """Tenancy of stored media: nothing lists objects (no listing route; the bucket is private), another tenant's
    key sees none of the account's tasks or elements, and the same picture uploaded by the other tenant is stored
    under a name of its own, so holding one's own URL says nothing about the other's."""
    front, side = mediagen.jpeg(768, 1024, scene=11), mediagen.jpeg(768, 1024, scene=12)
    async with served.client(await served.key("acme")) as acme, served.client(await served.key("rival")) as rival:
        mine = await _element(served, acme, image_body(_uri(front), _uri(side)))
        theirs = await _element(served, rival, image_body(_uri(front), _uri(side)))
        assert set(_paths(mine)).isdisjoint(_paths(theirs))
        assert (await rival.get(f"/v1/elements/{mine['element_id']}")).status_code == 404
        listed = (await rival.get("/v1/elements")).json()["data"]
        assert [e["element_id"] for e in listed] == [theirs["element_id"]]
        for listing in ("/assets", "/assets/", "/assets/?list-type=2", "/files/"):
            assert (await rival.get(listing)).status_code == 404, listing


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/assets/", 404, "route_not_found"),
        ("GET", "/assets/..%2F..%2Fetc%2Fpasswd", 404, "route_not_found"),  # %2F is a slash to the router
        ("GET", "/assets/" + "A" * 32 + ".exe", 404, "asset_not_found"),
        ("GET", "/assets/" + "a" * 64 + ".jpg", 404, "asset_not_found"),
        ("POST", "/assets/" + "A" * 32 + ".jpg", 405, "method_not_allowed"),
        ("DELETE", "/assets/" + "A" * 32 + ".jpg", 405, "method_not_allowed"),
    ],
)
async def test_every_other_answer_of_assets_is_the_contracts_json(
    served: Served, method: str, path: str, status: int, code: str
) -> None:
    async with served.client() as anyone:
        _json_error(await anyone.request(method, path), status, code)
