"""Element rows on both engines: listed newest first (within one second too), paged by cursor, deleted once."""

from __future__ import annotations

import time
from dataclasses import replace

from reelgate.domain import new_element_id
from reelgate.store.sql import Store

from .factories import account, done, new_task


async def _element(store: Store, acct: int, owner: str) -> str:
    rec, _ = await store.tasks.create(new_task(acct), None)
    await store.tasks.claim(owner, time.time(), 30, 1)
    element_id = new_element_id()
    finish = replace(done(rec.id, owner), result={"element_id": element_id},
                     element={"element_id": element_id, "provider": "local", "upstream_id": None})  # fmt: skip
    assert await store.tasks.finish(finish) is not None
    return element_id


async def test_newest_first_within_one_second_and_paged(store: Store) -> None:
    acct = await account(store, credits=10_000)
    made = [await _element(store, acct, f"w{i}") for i in range(6)]  # all within the same second
    first = await store.elements.list_for_account(acct, after="", limit=4)
    rest = await store.elements.list_for_account(acct, after=first[-1].id, limit=4)
    assert [e.id for e in first + rest] == made[::-1]
    assert await store.elements.mark_deleted(made[0], acct, time.time()) is not None
    assert await store.elements.mark_deleted(made[0], acct, time.time()) is None
    assert made[0] not in [e.id for e in await store.elements.list_for_account(acct, after="", limit=10)]
