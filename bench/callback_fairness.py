"""Callback fairness: how long one tenant's callbacks wait while another tenant's receiver holds every attempt 10 s.

``reelgate serve`` runs with the shipped callback settings (10 s deadline per attempt, retries after 1/2/4 s, 8
attempts in flight per account, 64 per dispatcher). The attacker submits N tasks (default 300) whose images do not
exist and cancels each at once: refunded, nearly free, and each one a callback to a receiver that answers after 11 s,
so every attempt runs into the deadline and is retried. Once the attacker's attempts are in flight, the victim
submits M real tasks (default 10, two a second), each with a callback to a receiver that answers at once.

Measured: the victim's latency from its task's terminal commit (``tasks.finished_at``) to the first bytes of its
callback at the receiver; a callback that has not arrived ``--wait`` seconds after the last victim task finished
is counted missing. Target: every victim task completed and was called back, the slowest within 1 s.

    .venv/bin/python bench/callback_fairness.py --attack 300 --victims 10
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import httpx
import orjson
from benchkit import add_tests_to_path, create_key, database, machine, percentile, reelgate, report_verdict, table
from callback_latency import db_rows, task_body

add_tests_to_path()

from fakes import mediagen  # noqa: E402
from fakes.media_server import MediaServer  # noqa: E402
from fakes.receiver import Receiver  # noqa: E402

TARGET_MS = 1000.0
ATTACKER_REPLY_AFTER = 11.0


async def attack(base: str, key: str, body: dict[str, Any], count: int) -> int:
    """Submit and at once cancel ``count`` tasks; the number that ended with a callback due (cancelled or failed)."""
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                                 limits=httpx.Limits(max_connections=32)) as client:  # fmt: skip
        gate = asyncio.Semaphore(32)

        async def one() -> bool:
            async with gate:
                submitted = await client.post("/v1/videos/generations", json=body)
                submitted.raise_for_status()
                cancelled = await client.post(f"/v1/tasks/{submitted.json()['id']}/cancel")
                return cancelled.status_code in (200, 409)  # 409: the missing image failed it first

        return sum(await asyncio.gather(*(one() for _ in range(count))))


async def victim_tasks(base: str, key: str, body: dict[str, Any], count: int, rate: float) -> list[str]:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        ids = []
        for _ in range(count):
            answer = await client.post("/v1/videos/generations", json=body)
            answer.raise_for_status()
            ids.append(str(answer.json()["id"]))
            await asyncio.sleep(1 / rate)
        return ids


def first_arrivals(hook: Receiver, ids: list[str], wait: float) -> dict[str, float]:
    deadline = time.monotonic() + wait
    while True:
        first: dict[str, float] = {}
        for r in list(hook.received):
            first.setdefault(str(orjson.loads(r.body).get("id")), r.at)
        if set(ids) <= set(first) or time.monotonic() > deadline:
            return {i: first[i] for i in ids if i in first}
        time.sleep(0.05)


def measure(kind: str, attackers: int, victims: int, wait: float) -> dict[str, Any]:
    front, side = mediagen.jpeg(480, 640, scene=41), mediagen.jpeg(480, 640, scene=42)
    with database(kind) as db, reelgate(db) as rg, MediaServer() as media, \
            Receiver(default=ATTACKER_REPLY_AFTER) as slow, Receiver() as fast:  # fmt: skip
        media.serve("/front.jpg", front, "image/jpeg")
        media.serve("/side.jpg", side, "image/jpeg")
        victim_key = create_key(rg.env, account="victim")
        hostile = task_body(media.url("/gone-front.jpg"), media.url("/gone-side.jpg"), slow.url())
        ended = asyncio.run(attack(rg.base, rg.key, hostile, attackers))
        slow.wait_for(8, 60)  # the attacker's attempts are in flight
        started = time.monotonic()
        real = task_body(media.url("/front.jpg"), media.url("/side.jpg"), fast.url())
        ids = asyncio.run(victim_tasks(rg.base, victim_key, real, victims, 2.0))
        arrivals = first_arrivals(fast, ids, wait)
        elapsed = time.monotonic() - started
        rows = db_rows(rg, db, "SELECT id, status, finished_at FROM tasks")
        attacker_attempts = len(slow.received)
    status_of = {r[0]: r[1] for r in rows}
    finished = {r[0]: r[2] for r in rows if r[2] is not None}
    completed = [i for i in ids if status_of.get(i) == "completed"]
    latency = [(arrivals[i] - finished[i]) * 1000 for i in completed if i in arrivals and i in finished]
    passed = len(completed) == len(latency) == victims and max(latency, default=float("inf")) < TARGET_MS
    return {
        "database": kind, "attacker_tasks": attackers, "attacker_called_back": ended,
        "attacker_attempts_seen": attacker_attempts, "victim_tasks": victims, "victim_completed": len(completed),
        "victim_called_back": len(latency), "seconds": round(elapsed, 1),
        "p50_ms": round(percentile(latency, 50), 1), "max_ms": round(max(latency, default=float("nan")), 1),
        "target": f"all called back, max < {TARGET_MS:g} ms", "passed": passed,
    }  # fmt: skip


def render(rows: list[dict[str, Any]]) -> str:
    headers = ["db", "attacker tasks", "attacker attempts seen", "victim tasks", "completed", "called back",
               "p50 ms", "max ms", "target", "result"]  # fmt: skip
    return table(headers, [[r["database"], r["attacker_tasks"], r["attacker_attempts_seen"], r["victim_tasks"],
                            r["victim_completed"], r["victim_called_back"], r["p50_ms"], r["max_ms"], r["target"],
                            "PASS" if r["passed"] else "FAIL"] for r in rows])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attack", type=int, default=300, help="the attacker's cancelled tasks (default 300)")
    parser.add_argument("--victims", type=int, default=10, help="the victim's real tasks (default 10)")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the victim's callbacks")
    parser.add_argument("--databases", default="sqlite", help="comma list: sqlite,postgres (default sqlite)")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    info = machine()
    rows = [measure(kind, args.attack, args.victims, args.wait) for kind in args.databases.split(",")]
    print("\ncallback fairness: the victim's terminal commit -> its callback's first bytes, under the attacker's load")
    print(render(rows))
    return report_verdict("callback_fairness", info, args, all(r["passed"] for r in rows), rows)


if __name__ == "__main__":
    sys.exit(main())
