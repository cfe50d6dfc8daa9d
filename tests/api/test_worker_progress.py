"""Worker progress writes: a task's first report is written at once, later ones at most every PROGRESS_EVERY."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness import Api, auth, b64_jpeg, image_body
from reelgate.providers import Completed, Job, JobContext, NewElement, Outcome


class Reporting:
    """Reports each of ``percents`` back to back, says so, then waits to be let go and completes."""

    name = "local"

    def __init__(self, percents: list[int]) -> None:
        self.percents = percents
        self.reported = asyncio.Event()
        self.go = asyncio.Event()

    async def run(self, job: Job, ctx: JobContext) -> Outcome:
        for percent in self.percents:
            await ctx.progress(percent)
        self.reported.set()
        await self.go.wait()
        return Completed({"element_id": "42"}, NewElement("42"))

    async def delete_element(self, upstream_id: str, state: dict[str, Any]) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def _progress_while_running(api: Api, provider: Reporting) -> int:
    assert api.rt.worker is not None
    api.rt.worker.providers["local"] = provider
    key = await api.key()
    task_id = (await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).json()["id"]
    await asyncio.wait_for(provider.reported.wait(), 30)
    running = (await api.client.get(f"/v1/tasks/{task_id}", headers=auth(key))).json()
    provider.go.set()
    done = await api.wait(key, task_id, 30)
    assert running["status"] == "processing" and done["status"] == "completed" and done["progress"] == 100
    return int(running["progress"])


@pytest.mark.parametrize(("every", "shown"), [(3600.0, 10), (0.0, 30)])
async def test_reports_within_the_interval_are_not_written(api: Api, monkeypatch: Any, every: float,
                                                           shown: int) -> None:  # fmt: skip
    # Held for an hour, only the first report reaches the row; with no interval every report does (the last shows).
    monkeypatch.setattr("reelgate.worker.PROGRESS_EVERY", every)
    assert await _progress_while_running(api, Reporting([10, 20, 30])) == shown
