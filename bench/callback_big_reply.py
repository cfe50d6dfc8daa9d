"""A callback receiver that answers 200 with a huge body: what the attempt costs the server and other tenants.

``reelgate serve`` (shipped callback settings: 10 s deadline) runs one real task whose callback goes to a loopback
receiver answering ``200 OK`` with a chunked body of ``--mib`` MiB (default 1024). Meanwhile another tenant polls
its own task every 20 ms. Measured: the attempt's duration (the delivery log's ``latency_ms``), the server's peak
RSS growth (``VmHWM`` before and after, after a warm-up task with an ordinary receiver) and the other tenant's
slowest GET. Target: the attempt is logged as delivered within 1 s, peak RSS grows less than 32 MB, and no GET of
the other tenant takes 250 ms or more.

    .venv/bin/python bench/callback_big_reply.py --mib 1024
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from benchkit import add_tests_to_path, create_key, database, machine, reelgate, report_verdict, table
from callback_latency import task_body

add_tests_to_path()

from fakes import mediagen  # noqa: E402
from fakes.media_server import MediaServer  # noqa: E402

_CHUNK = b"x" * 65536


def _peak_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


class BigReply:
    """A loopback receiver: ``200 OK`` and ``mib`` MiB of chunked body to every POST (until the client hangs up)."""

    def __init__(self, mib: int) -> None:
        chunks = mib * 16

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's dispatch name
                self.rfile.read(int(self.headers.get("content-length", "0")))
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for _ in range(chunks):
                        self.wfile.write(b"10000\r\n" + _CHUNK + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client hung up: what a bounded reader does

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _attempt_log(client: httpx.AsyncClient, task_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log: dict[str, Any] = (await client.get(f"/v1/tasks/{task_id}/callbacks")).json()
        if log["data"]:
            return log
        await asyncio.sleep(0.02)
    raise RuntimeError(f"no callback attempt logged for {task_id} in {timeout:g} s")


async def _poll(client: httpx.AsyncClient, task_id: str, stop: asyncio.Event) -> float:
    worst = 0.0
    while not stop.is_set():
        started = time.perf_counter()
        (await client.get(f"/v1/tasks/{task_id}")).raise_for_status()
        worst = max(worst, time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return worst


async def _run(base: str, keys: tuple[str, str], pid: int, body: dict[str, Any], hook: BigReply) -> dict[str, Any]:
    tenant, other = ({"Authorization": f"Bearer {k}"} for k in keys)
    async with httpx.AsyncClient(base_url=base, headers=tenant, timeout=60) as a, \
            httpx.AsyncClient(base_url=base, headers=other, timeout=60) as b:  # fmt: skip
        quiet = {k: v for k, v in body.items() if k != "callback_url"}
        polled = (await b.post("/v1/videos/generations", json=quiet)).json()["id"]
        warm = (await a.post("/v1/videos/generations", json=body)).json()["id"]  # the receiver, once, to warm up
        await _attempt_log(a, warm)
        before = _peak_mb(pid)
        stop = asyncio.Event()
        poller = asyncio.create_task(_poll(b, polled, stop))
        log = await _attempt_log(a, (await a.post("/v1/videos/generations", json=body)).json()["id"])
        stop.set()
        worst = await poller
    attempt = log["data"][0]
    return {"status_code": attempt["status_code"], "error": attempt["error"], "delivery": log["delivery"]["status"],
            "attempt_s": round(attempt["latency_ms"] / 1000, 2), "peak_rss_before_mb": before,
            "peak_rss_growth_mb": _peak_mb(pid) - before, "other_get_max_ms": round(worst * 1000, 1)}  # fmt: skip


def measure(kind: str, mib: int) -> dict[str, Any]:
    front, side = mediagen.jpeg(480, 640, scene=51), mediagen.jpeg(480, 640, scene=52)
    hook = BigReply(mib)
    try:
        with database(kind) as db, reelgate(db) as rg, MediaServer() as media:
            media.serve("/front.jpg", front, "image/jpeg")
            media.serve("/side.jpg", side, "image/jpeg")
            body = task_body(media.url("/front.jpg"), media.url("/side.jpg"), hook.url)
            keys = (rg.key, create_key(rg.env, account="other"))
            row = asyncio.run(_run(rg.base, keys, rg.proc.pid, body, hook))
    finally:
        hook.close()
    row["passed"] = (row["delivery"] == "delivered" and row["attempt_s"] < 1.0 and row["peak_rss_growth_mb"] < 32
                     and row["other_get_max_ms"] < 250)  # fmt: skip
    return {"database": kind, "reply_mib": mib, **row}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024, help="size of the receiver's 200 body in MiB (default 1024)")
    parser.add_argument("--databases", default="sqlite", help="comma list: sqlite,postgres (default sqlite)")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    info = machine()
    rows = [measure(kind, args.mib) for kind in args.databases.split(",")]
    headers = ["db", "reply MiB", "delivery", "attempt s", "peak RSS growth MB", "other tenant's max GET ms", "result"]
    print(table(headers, [[r["database"], r["reply_mib"], r["delivery"], r["attempt_s"], r["peak_rss_growth_mb"],
                           r["other_get_max_ms"], "PASS" if r["passed"] else "FAIL"] for r in rows]))  # fmt: skip
    return report_verdict("callback_big_reply", info, args, all(r["passed"] for r in rows), rows)


if __name__ == "__main__":
    sys.exit(main())
