"""What an operator does through the console, on both engines: each action changes what it should (and is in the
audit log), each page shows what the store holds. Tasks are put in place through the store with no worker running,
so each stays exactly where the test leaves it."""

from __future__ import annotations

import html
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from api.console_client import Console, open_console
from reelgate.config import Settings
from reelgate.console_ops import Admins
from reelgate.store.deliveries import Attempt
from reelgate.store.sql import Store
from store.factories import account, done, new_task


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[Console]:
    async with open_console(settings) as opened:
        await opened.sign_in()
        yield opened


async def audited(c: Console) -> list[tuple[str, str, str]]:
    return [(e.action, e.target, e.detail) for e in await Admins(c.rt.store).audit_log()]


async def shown(c: Console, path: str) -> str:
    page = await c.client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    return html.unescape(page.text)


async def test_grant_limits_and_refusals_on_an_account_page(console: Console) -> None:
    acme = await account(console.rt.store, "acme", credits=0)
    r = await console.post("/console/account/grant", account="acme", credits="2.5", note="launch promo")
    assert r.status_code == 303 and r.headers["location"] == "/console/account?name=acme"
    page = await shown(console, r.headers["location"])
    assert "Granted 2.5 credits to acme." in page and "launch promo" in page
    assert (await console.rt.store.accounts.view(acme)).balance.available == 2500
    await console.post("/console/account/grant", account="acme", credits="-3")
    assert "credits must be a number more than 0, got '-3'" in await shown(console, "/console/account?name=acme")
    await console.post("/console/account/limits", account="acme", rate_per_minute="30", max_in_flight="")
    assert "Limits of acme: 30 requests per minute, default tasks in flight." in await shown(
        console, "/console/account?name=acme"
    )
    ghost = await console.client.get("/console/account?name=ghost")
    assert ghost.status_code == 303 and "no account named 'ghost'" in await shown(console, "/console/accounts")
    assert [a[:2] for a in await audited(console)][:2] == [
        ("set_limits", "account:acme"),
        ("grant_credits", "account:acme"),
    ]


async def test_a_key_is_shown_once_works_and_is_revoked(console: Console) -> None:
    await account(console.rt.store, "acme", credits=1000)
    made = await console.post("/console/account/keys", account="acme", name="ci")
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    key = made.text.split('id="new-key">')[1].split("<")[0]
    assert (await console.client.get("/v1/credits", headers={"Authorization": f"Bearer {key}"})).status_code == 200
    assert key not in await shown(console, "/console/account?name=acme")  # never again
    prefix = key[:10]
    r = await console.post("/console/account/keys/revoke", account="acme", prefix=prefix)
    assert f"Revoked key {prefix}." in await shown(console, r.headers["location"])
    keys = await console.rt.store.accounts.list_keys("acme")
    assert [k["revoked_at"] is not None for k in keys] == [True]
    await console.post("/console/account/keys/revoke", account="acme", prefix=prefix)
    assert f"account 'acme' has no active key '{prefix}'" in await shown(console, "/console/account?name=acme")
    assert [a[0] for a in await audited(console)][:2] == ["revoke_key", "create_key"]


async def test_rotating_the_webhook_secret_shows_the_new_one_once(console: Console) -> None:
    acme = await account(console.rt.store, "acme")
    before = await console.rt.store.accounts.webhook_secret(acme)
    r = await console.post("/console/account/webhook-secret/rotate", account="acme")
    secret = r.text.split('id="new-secret">')[1].split("<")[0]
    assert secret.startswith("whsec_") and secret != before
    assert await console.rt.store.accounts.webhook_secret(acme) == secret
    assert secret not in await shown(console, "/console/account?name=acme")


async def failed_with_dead_callback(store: Store, account_id: int) -> str:
    """A task that failed and whose callback delivery gave up after one attempt answered 500."""
    task, _ = await store.tasks.create(new_task(account_id, callback="https://hooks.example/cb"), None)
    (claim,) = await store.tasks.claim("worker-a", time.time(), 30, 1)
    assert await store.tasks.finish(
        replace(done(claim.id, "worker-a", ok=False), error_code="content_policy_violation")
    )
    (due,) = await store.deliveries.claim("dispatcher-a", time.time(), 30, 1, per_account=4)
    attempt = Attempt(due.id, 1, time.time(), 12.0, 500, None, "dead", None)
    assert await store.deliveries.record(attempt, "dispatcher-a")
    return task.id


async def test_find_a_failed_task_read_its_timeline_and_resend_its_dead_callback(console: Console) -> None:
    store = console.rt.store
    acme = await account(store, "acme")
    await account(store, "other")
    failed = await failed_with_dead_callback(store, acme)
    pending, _ = await store.tasks.create(new_task(acme), None)
    listing = await shown(console, "/console/tasks?status=failed&account=acme")
    assert failed in listing and pending.id not in listing
    assert pending.id in await shown(console, "/console/tasks?account=acme")
    assert failed not in await shown(console, "/console/tasks?account=other")
    assert failed in await shown(console, "/console/tasks?error_code=content_policy_violation")
    assert failed in await shown(console, "/console/tasks?callback=dead")
    found = await console.client.get(f"/console/tasks?id={failed}")
    assert found.headers["location"] == f"/console/tasks/{failed}"
    bad = await console.client.get("/console/tasks?id=nope")
    assert bad.status_code == 400 and "is not a task id" in bad.text

    page = await shown(console, f"/console/tasks/{failed}")
    for event in (
        "submitted",
        "credits reserve",
        "credits release",
        "failed",
        "callback queued",
        "callback attempt 1",
        "HTTP 500 in 12 ms",
        "content_policy_violation",
    ):
        assert event in page, event
    assert 'id="delivery-status">dead<' in page
    r = await console.post(f"/console/tasks/{failed}/resend-callback")
    assert "Callback queued again" in await shown(console, r.headers["location"])
    delivery, _ = await store.deliveries.for_task(failed)
    assert delivery is not None and (delivery["status"], delivery["resends"]) == ("pending", 1)
    await console.post(f"/console/tasks/{failed}/resend-callback")
    assert "is still being delivered" in await shown(console, f"/console/tasks/{failed}")
    assert ("resend_callback", f"task:{failed}") in [a[:2] for a in await audited(console)]


async def test_cancelling_a_task_releases_its_credits(console: Console) -> None:
    store = console.rt.store
    acme = await account(store, "acme", credits=5000)
    task, _ = await store.tasks.create(new_task(acme, price=1500), None)
    assert (await store.accounts.view(acme)).balance.available == 3500
    r = await console.post(f"/console/tasks/{task.id}/cancel")
    assert "Cancelled" in await shown(console, r.headers["location"])
    after = await store.tasks.get(task.id)
    assert after is not None and (after.status, after.error_code) == ("failed", "request_cancelled")
    assert (await store.accounts.view(acme)).balance.available == 5000
    await console.post(f"/console/tasks/{task.id}/cancel")
    assert "can no longer be cancelled" in await shown(console, f"/console/tasks/{task.id}")
    assert [a[:2] for a in await audited(console)][0] == ("cancel_task", f"task:{task.id}")


def element_result(name: str, *, video: bool = False) -> dict[str, Any]:
    if video:
        return {"element_id": "0", "element_name": name, "reference_type": "video_refer",
                "element_video_list": {"refer_videos": [{"video_url": f"/assets/{name}.mp4"}],
                                       "thumbnail_url": f"/assets/{name}-middle.jpg"}}  # fmt: skip
    return {"element_id": "0", "element_name": name, "reference_type": "image_refer",
            "element_image_list": {"frontal_image": f"/assets/{name}.jpg",
                                   "refer_images": [{"image_url": f"/assets/{name}-2.jpg"}]}}  # fmt: skip


async def made_element(store: Store, account_id: int, element_id: str, provider: str, result: dict[str, Any]) -> str:
    task, _ = await store.tasks.create(new_task(account_id), None)
    (claim,) = await store.tasks.claim("worker-a", time.time(), 30, 1)
    element = {"element_id": element_id, "provider": provider, "upstream_id": None}
    assert await store.tasks.finish(replace(done(claim.id, "worker-a"), result=result, element=element))
    return task.id


async def test_the_gallery_shows_thumbnails_filters_and_the_reference_media(console: Console) -> None:
    store = console.rt.store
    acme, other = await account(store, "acme"), await account(store, "other")
    await made_element(store, acme, "101", "local", element_result("hero"))
    await made_element(store, other, "102", "kling", element_result("clip", video=True))
    gallery = await shown(console, "/console/elements")
    assert 'src="/assets/hero.jpg"' in gallery and 'src="/assets/clip-middle.jpg"' in gallery
    assert gallery.index("clip-middle") < gallery.index("hero.jpg")  # newest first
    only_acme = await shown(console, "/console/elements?account=acme")
    assert "hero.jpg" in only_acme and "clip" not in only_acme
    only_kling = await shown(console, "/console/elements?provider=kling")
    assert "clip" in only_kling and "hero" not in only_kling
    detail = await shown(console, "/console/elements/101")
    assert 'src="/assets/hero.jpg"' in detail and 'src="/assets/hero-2.jpg"' in detail
    video = await shown(console, "/console/elements/102")
    assert '<video src="/assets/clip.mp4"' in video and 'poster="/assets/clip-middle.jpg"' in video
    assert "hero.jpg" in await shown(console, "/console/account?name=acme")


async def test_the_overview_counts_what_the_store_holds(console: Console) -> None:
    store = console.rt.store
    acme = await account(store, "acme")
    failed = await failed_with_dead_callback(store, acme)
    await store.tasks.create(new_task(acme), None)
    page = await shown(console, "/console/")
    assert "pending 1" in page and "failed 1" in page  # the chart's legend
    assert "content_policy_violation" in page and failed in page  # failures by code; dead callbacks
    assert "No worker or dispatcher has heartbeated" in page and "Work is not getting done" in page
    assert "<svg" in page and "Tasks submitted per minute over the last hour" in page
    day = await shown(console, "/console/?window=day")
    assert "Tasks submitted per hour over the last day" in day
