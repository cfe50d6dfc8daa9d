"""The asyncio client against a real ``reelgate serve``: the same calls as the blocking one, awaited."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from client.live import LiveServer, flaky_proxy, jpeg, slow_images
from reelgate_client import (
    AsyncReelgate,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientQuotaError,
    NotFoundError,
    Task,
    TaskFailedError,
    WaitTimeoutError,
)


async def _create(client: AsyncReelgate, scene: int) -> Task:
    return await client.elements.create(
        name="Async", description="async test", frontal=jpeg(scene), refer=[jpeg(scene + 1)]
    )


async def test_create_wait_retrieve(server: LiveServer, api_key: str, images: tuple[Path, Path, Path]) -> None:
    front, side, _ = images
    bare = base64.b64encode(jpeg(201)).decode()
    async with AsyncReelgate(api_key=api_key, base_url=server.base_url) as client:
        task = await client.elements.create(
            name="Async",
            description="path, bytes, Base64",
            frontal=front,
            refer=[side, jpeg(200), bare],
            tags=["o_103"],
        )
        seen: list[Task] = []
        done = await client.tasks.wait(task.id, timeout=30, on_progress=seen.append)
        assert done.status == "completed" and done.result is not None and done.result.element_id.isdigit()
        assert [t.progress for t in seen] == sorted(t.progress for t in seen) and seen[-1].progress == 100
        assert len(done.result.refer_images) == 3 and done.result.tags == ("o_103",)
        assert await client.tasks.retrieve(task) == done
        with pytest.raises(ConflictError) as conflict:
            await client.tasks.cancel(done)
        assert conflict.value.code == "task_not_cancellable"


async def test_pagination_and_elements(server: LiveServer, keys: dict[str, str]) -> None:
    async with AsyncReelgate(api_key=keys["async-main"], base_url=server.base_url) as client:
        done = [await client.tasks.wait(await _create(client, scene), timeout=30) for scene in (210, 212, 214)]
        first = await client.tasks.list(limit=2)
        assert len(first.data) == 2 and first.has_more
        second = await first.get_next_page()
        assert not second.has_more and len(second.data) == 1
        assert [t.id async for t in client.tasks.list(limit=1)] == [t.id for t in reversed(done)]
        assert [t.id async for t in first] == [t.id for t in reversed(done)]

        element_ids = {t.result.element_id for t in done if t.result is not None}
        assert {e.element_id async for e in client.elements.list(limit=1)} == element_ids
        one = next(iter(element_ids))
        assert (await client.elements.retrieve(one)).element_id == one
        assert (await client.elements.delete(one)).deleted
        with pytest.raises(NotFoundError):
            await client.elements.retrieve(one)
        assert [m.id for m in await client.models.list()][0] == "kling-custom-element"
        assert (await client.credits.retrieve()).raw["success"] is True


async def test_errors_map_to_their_classes(server: LiveServer, api_key: str, keys: dict[str, str]) -> None:
    async with AsyncReelgate(api_key=api_key, base_url=server.base_url) as client:
        with pytest.raises(BadRequestError) as bad:
            await client.elements.create(name="ok", description="", frontal=jpeg(1), refer=[jpeg(2)])
        assert bad.value.param == "model_params.element_description"
        with pytest.raises(NotFoundError):
            await client.tasks.retrieve("task-unified-1700000000-zzzzzzzz")
    async with AsyncReelgate(api_key=keys["broke"], base_url=server.base_url) as client:
        with pytest.raises(InsufficientQuotaError):
            await _create(client, 220)
    async with AsyncReelgate(api_key="rg_wrong", base_url=server.base_url) as client:
        with pytest.raises(AuthenticationError):
            await client.tasks.list()


async def test_wait_timeout_and_cancel(server: LiveServer, api_key: str) -> None:
    with slow_images(jpeg(231)) as (_slow, url):
        async with AsyncReelgate(api_key=api_key, base_url=server.base_url) as client:
            task = await client.elements.create(name="Slow", description="held", frontal=jpeg(230), refer=url)
            with pytest.raises(WaitTimeoutError):
                await client.tasks.wait(task, timeout=0.5)
            assert (await client.tasks.cancel(task)).error is not None
            with pytest.raises(TaskFailedError) as failed:
                await client.tasks.wait(task, timeout=5)
            assert failed.value.code == "request_cancelled"


async def test_a_lost_answer_is_charged_once(server: LiveServer, keys: dict[str, str]) -> None:
    with flaky_proxy(server.base_url) as (proxy, url):
        async with AsyncReelgate(api_key=keys["async-lost"], base_url=url) as client:
            proxy.plan = ["drop"]
            task = await _create(client, 240)
            await client.tasks.wait(task, timeout=30)
            assert [t.id async for t in client.tasks.list()] == [task.id]
        keys_sent = {s.headers["idempotency-key"] for s in proxy.seen if s.method == "POST"}
        assert len([s for s in proxy.seen if s.method == "POST"]) == 2 and len(keys_sent) == 1
    assert server.balance("async-lost")["available"] == 4
