"""A channel's cap on upstream tasks in flight holds across workers: two runtimes (two Worker instances, each with its
own database connections, as two processes would have) against one fake Kling account, cap 2."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fakes.kling_server import FakeKling
from kling.harness import AK, SK, channel, gateway, params, settings_for, write_config
from reelgate.service import Submission

TASKS = 6


async def test_two_workers_never_have_more_than_the_cap_in_flight(
    tmp_path: Path, db_url: str, images: tuple[str, str]
) -> None:
    # Each task stays submitted/processing for about a second upstream; the account's own cap at Kling is 2 too.
    with FakeKling(access_keys={AK: SK}, polls_per_step=None, seconds_per_step=0.4, concurrency=2) as fake:
        config = write_config(tmp_path / "kling.json", [channel("main", fake, concurrency=2)])
        settings = settings_for(tmp_path, db_url, config, worker_concurrency=8)
        async with gateway(settings) as one, gateway(settings) as two:
            for gate in (one, two):
                await gate.rt.store.accounts.grant(gate.owner.account_id, 1_000_000, "test")
            element = await one.submit(params(images))  # elements count against the same cap
            body = {"model": "kling-v3-text-to-video", "prompt": "waves", "duration": 3}
            ids = [(await gate.rt.service.submit(Submission(body, gate.owner))).id
                   for gate in (one, two) for _ in range(TASKS // 2)]  # fmt: skip
            done = await asyncio.gather(*(one.wait(task_id, timeout=60) for task_id in [element, *ids]))
            left = await one.rt.store.upstream_slots.in_flight("kling:main")
    assert [t.status for t in done] == ["completed"] * (TASKS + 1), [(t.error_code, t.error_message) for t in done]
    assert fake.max_in_flight(AK) == 2 and fake.cap_refusals(AK) == 0  # reached, never passed: Kling never said 1303
    assert len(fake.video_tasks()) == TASKS and all(fake.video_create_count(i) == 1 for i in ids)
    assert left == 0  # every slot was given back
