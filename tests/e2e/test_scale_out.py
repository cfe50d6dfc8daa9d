"""Scale-out on PostgreSQL: 2 API processes and 3 workers, kills, restarts and a cut database connection,
and still every task ends, is charged or refunded exactly once, and is called back once per delivery."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest

from dbs import truncate
from fakes import mediagen
from fakes.receiver import Receiver
from fakes.tcp_proxy import TcpProxy
from procs import Proc, create_key, free_ports, reelgate_env, serve

TASKS = 240
FRONT = "data:image/jpeg;base64," + base64.b64encode(mediagen.jpeg(512, 640, scene=1)).decode()
SIDE = base64.b64encode(mediagen.jpeg(512, 640, scene=2)).decode()


def _body(callback: str) -> dict[str, object]:
    return {"model": "kling-custom-element", "callback_url": callback, "model_params": {
        "element_name": "scale", "element_description": "many processes", "reference_type": "image_refer",
        "element_image_list": {"frontal_image": FRONT, "refer_images": [{"image_url": SIDE}]}}}  # fmt: skip


def _submit_all(ports: list[int], key: str, callback: str) -> list[str]:
    headers = {"Authorization": f"Bearer {key}"}

    def one(i: int) -> str:
        port = ports[i % len(ports)]
        r = httpx.post(f"http://127.0.0.1:{port}/v1/videos/generations", json=_body(callback), headers=headers,
                       timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(TASKS)))


async def _wait_recorded(url: str, timeout: float) -> None:
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + timeout
        while await conn.fetchval("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'") > 0:
            assert time.monotonic() < deadline, "deliveries still pending after every callback arrived"
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def _check_database(url: str, ids: list[str]) -> None:
    conn = await asyncpg.connect(url)
    try:
        statuses = await conn.fetch("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
        assert {r["status"]: r["n"] for r in statuses} == {"completed": TASKS}, statuses
        acct = await conn.fetchrow("SELECT * FROM accounts WHERE name = 'acme'")
        sums = {r["kind"]: r["total"] for r in await conn.fetch(
            "SELECT kind, SUM(amount) AS total FROM ledger GROUP BY kind")}  # fmt: skip
        assert sums["reserve"] == TASKS * 1000 == sums.get("capture", 0) + sums.get("release", 0)
        assert acct["captured"] == sums["capture"] and acct["reserved"] == 0 and acct["in_flight"] == 0
        assert acct["available"] + acct["captured"] == sums["grant"]
        dupes = await conn.fetch("SELECT task_id FROM ledger WHERE task_id IS NOT NULL GROUP BY task_id, kind "
                                 "HAVING COUNT(*) > 1")  # fmt: skip
        assert dupes == []
        # Two live workers never held one task: every claim of a task already leased replaced an expired lease.
        overlaps = await conn.fetch(
            "SELECT task_id FROM task_claims WHERE previous_owner IS NOT NULL AND previous_owner <> owner "
            "AND previous_lease_expires >= claimed_at"
        )
        assert overlaps == []
        delivered = await conn.fetchval("SELECT COUNT(*) FROM deliveries WHERE status = 'delivered'")
        assert delivered == TASKS
    finally:
        await conn.close()


@pytest.mark.slow
def test_two_apis_three_workers_kills_and_a_cut_connection(tmp_path: Path, pg_session_url: str) -> None:
    db_url = pg_session_url
    asyncio.run(truncate(db_url))
    pg_port = int(db_url.split(":")[-1].split("/")[0])
    env = reelgate_env(tmp_path / "data", db_url, REELGATE_LEASE_SECONDS="2", REELGATE_WORKER_CONCURRENCY="4",
                       REELGATE_CALLBACK_RETRY_DELAYS="0.2,0.4,0.8", REELGATE_RATE_LIMIT_PER_MINUTE="0")  # fmt: skip
    key = create_key(env, credits=TASKS + 10)
    ports = free_ports(2)
    with Receiver() as hook, TcpProxy(pg_port) as proxy:
        cut_env = {**env, "REELGATE_DATABASE_URL": db_url.replace(f":{pg_port}/", f":{proxy.port}/")}
        apis = [serve(env, port, tmp_path / f"api{i}.log", "--no-tasks") for i, port in enumerate(ports)]
        workers = [Proc(env, "worker", log=tmp_path / "w0.log"), Proc(env, "worker", log=tmp_path / "w1.log"),
                   Proc(cut_env, "worker", log=tmp_path / "w2.log")]  # fmt: skip
        try:
            ids = _submit_all(ports, key, hook.url())
            time.sleep(0.5)
            workers[0].kill()  # SIGKILL mid-work: its leases expire and the others take over
            proxy.cut(3.0)  # worker 2 loses its database for 3 s
            time.sleep(1.0)
            workers[1].kill()
            workers[1] = Proc(env, "worker", log=tmp_path / "w1b.log")  # and one is restarted
            # A dispatcher killed between its POST and its record sends that delivery again: count tasks, not
            # requests, then let the survivors record every delivery before the processes go.
            got = hook.wait_for_tasks(ids, timeout=120)
            asyncio.run(_wait_recorded(db_url, timeout=60))
        finally:
            for proc in [*workers, *apis]:
                proc.kill()
    by_task: dict[str, set[str]] = defaultdict(set)
    for r in got:
        by_task[json.loads(r.body)["id"]].add(r.headers["webhook-id"])
    assert set(by_task) == set(ids) and all(len(v) == 1 for v in by_task.values())
    asyncio.run(_check_database(db_url, ids))
