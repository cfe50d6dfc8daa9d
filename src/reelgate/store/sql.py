"""The Store: one object that owns every SQL statement, grouped by noun, over either database engine."""

from __future__ import annotations

import time

from reelgate.sealing import SecretBox
from reelgate.store.accounts import AccountStore
from reelgate.store.db import Database
from reelgate.store.deliveries import DeliveryStore
from reelgate.store.elements import ElementStore
from reelgate.store.engines import make_database
from reelgate.store.processes import ProcessStore
from reelgate.store.tasks import TaskStore
from reelgate.store.uploads import UploadStore
from reelgate.store.upstream_slots import UpstreamSlotStore


class Store:
    def __init__(self, db: Database, box: SecretBox | None = None) -> None:
        self.db = db
        self.accounts = AccountStore(db, box or SecretBox.ephemeral())
        self.tasks = TaskStore(db)
        self.elements = ElementStore(db)
        self.deliveries = DeliveryStore(db)
        self.uploads = UploadStore(db)
        self.upstream_slots = UpstreamSlotStore(db)
        self.processes = ProcessStore(db)

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10, box: SecretBox | None = None) -> Store:
        store = cls(make_database(url, pool_size=pool_size), box)
        await store.db.open()
        return store

    async def purge_idempotency(self, older_than: float) -> int:
        sql = "DELETE FROM idempotency WHERE created < :t"
        return await self.db.write(lambda c: c.run(sql, {"t": older_than}))

    async def ping(self) -> float:
        started = time.perf_counter()
        await self.db.ping()
        return time.perf_counter() - started

    async def close(self) -> None:
        await self.db.close()
