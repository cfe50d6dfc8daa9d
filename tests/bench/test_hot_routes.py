"""bench/hot_routes.py reads many distinct tasks, not one id that the store's read coalescer de-duplicates."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import httpx

Import = Callable[[str], ModuleType]


def test_the_get_run_reads_many_distinct_real_tasks(bench: Import) -> None:
    hot, benchkit = bench("hot_routes"), bench("benchkit")
    with benchkit.database("sqlite") as db, benchkit.reelgate(db, no_tasks=True) as rg:
        ids = hot.submit_many(rg, hot.READ_IDS)
        url, options = hot.route_request(rg, hot.GET_ROUTE, ids)
        paths = options["paths"]
        assert len(set(paths)) == len(paths) >= 500  # was one path, the same id on every request
        assert url.startswith(rg.base) and url[len(rg.base) :] in paths
        with httpx.Client(base_url=rg.base, headers=options["headers"], timeout=10) as client:
            seen = {client.get(path).json()["id"] for path in paths[::50]}  # a sample: every one a real task
        assert len(seen) == len(paths[::50])
