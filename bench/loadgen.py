"""A small HTTP/1.1 keep-alive load generator, used only when wrk is not available.

Run in its own process (benchkit starts it), one asyncio connection per ``--connections``, for ``--duration``
seconds; it prints the same ``BENCHJSON {...}`` line as benchkit's wrk script. A single Python process tops out
well below wrk, so on a 2-core machine the ratios it reports are pessimistic for fast routes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from urllib.parse import urlsplit


class _Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.non2xx = 0
        self.errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}


def _request(method: str, host: str, path: str, headers: list[str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *headers]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _connection(args: argparse.Namespace, paths: list[str], deadline: float, stats: _Stats) -> None:
    url = urlsplit(args.url)
    body = open(args.body_file, "rb").read() if args.body_file else b""  # noqa: SIM115 - small file, read once
    try:
        reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
    except OSError:
        stats.errors["connect"] += 1
        return
    rng = random.Random()
    try:
        while time.monotonic() < deadline:
            path = rng.choice(paths) if paths else (url.path or "/")
            started = time.perf_counter()
            writer.write(_request(args.method, url.netloc, path, args.header, body))
            status = await asyncio.wait_for(_read_response(reader), timeout=10)
            stats.latencies.append(time.perf_counter() - started)
            if not 200 <= status < 400:
                stats.non2xx += 1
    except TimeoutError:
        stats.errors["timeout"] += 1
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        stats.errors["read"] += 1
    finally:
        writer.close()


def _pct(ordered: list[float], pct: float) -> int:
    if not ordered:
        return 0
    return int(ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] * 1e6)


async def main(args: argparse.Namespace) -> None:
    paths = open(args.paths_file).read().split() if args.paths_file else []  # noqa: SIM115
    stats = _Stats()
    started = time.monotonic()
    deadline = started + args.duration
    await asyncio.gather(*(_connection(args, paths, deadline, stats) for _ in range(args.connections)))
    elapsed = time.monotonic() - started
    ordered = sorted(stats.latencies)
    result = {
        "requests": len(ordered), "duration_us": int(elapsed * 1e6), "p50_us": _pct(ordered, 50),
        "p90_us": _pct(ordered, 90), "p99_us": _pct(ordered, 99), "max_us": _pct(ordered, 100),
        "non2xx": stats.non2xx, **stats.errors,
    }  # fmt: skip
    print("BENCHJSON " + json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--body-file", default="")
    parser.add_argument("--paths-file", default="")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(args))
    else:
        uvloop.run(main(args))
