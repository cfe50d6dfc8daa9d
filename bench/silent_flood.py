"""Silent connections from many client addresses against a real ``reelgate serve`` (issue 18, item 2).

Opens ``--per`` connections from each of ``--sources`` loopback addresses (127.0.0.2, 127.0.0.3, ...; Linux
routes all of 127/8 to lo), sends nothing on them, then asks ``GET /healthz`` from 127.0.0.100, an address that
took no part. Reports that answer and its latency, how many flood connections the server had closed by then, and
how many it had closed ``--hold`` seconds later (the head deadline is 10 s from accept).

Verdict (exit 1 when missed): the bystander gets 200, and every flood connection is closed within the hold.

    .venv/bin/python bench/silent_flood.py [--per 256 --sources 17 --hold 12]
"""

from __future__ import annotations

import argparse
import socket
import sys
import time

from benchkit import database, reelgate


def _open(port: int, per: int, sources: int) -> list[socket.socket]:
    held = []
    for n in range(2, 2 + sources):
        for _ in range(per):
            s = socket.socket()
            s.bind((f"127.0.0.{n}", 0))
            s.connect(("127.0.0.1", port))
            held.append(s)
    return held


def _bystander(port: int) -> tuple[bytes, float]:
    """The status line of GET /healthz from 127.0.0.100 (or what went wrong), and its latency in ms."""
    started = time.perf_counter()
    with socket.socket() as c:
        c.bind(("127.0.0.100", 0))
        c.settimeout(10)
        data = b""
        try:
            c.connect(("127.0.0.1", port))
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while chunk := c.recv(65536):
                data += chunk
        except OSError as exc:
            data += f"<{exc!r}>".encode()
    return data.split(b"\r\n", 1)[0] or b"<no answer>", (time.perf_counter() - started) * 1000


def _closed(held: list[socket.socket]) -> int:
    """How many of ``held`` the server has closed (EOF or reset), without waiting."""
    count = 0
    for s in held:
        s.setblocking(False)
        try:
            count += s.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per", type=int, default=256, help="silent connections per source address")
    parser.add_argument("--sources", type=int, default=17, help="source addresses (127.0.0.2 upwards)")
    parser.add_argument("--hold", type=float, default=12.0, help="seconds to wait before counting closed ones")
    args = parser.parse_args()
    with database("sqlite") as db, reelgate(db) as rg:
        started = time.monotonic()
        held = _open(rg.port, args.per, args.sources)
        print(f"opened {len(held)} silent connections from {args.sources} addresses in "
              f"{time.monotonic() - started:.1f} s")  # fmt: skip
        time.sleep(0.5)
        status, ms = _bystander(rg.port)
        print(f"bystander GET /healthz from 127.0.0.100: {status.decode(errors='replace')} in {ms:.1f} ms")
        print(f"closed by the server {time.monotonic() - started:.1f} s after the first connect: {_closed(held)}")
        time.sleep(max(0.0, started + args.hold - time.monotonic()))
        closed = _closed(held)
        print(f"closed by the server {time.monotonic() - started:.1f} s after the first connect: {closed}")
        for s in held:
            s.close()
    ok = status.startswith(b"HTTP/1.1 200") and closed == len(held)
    print("verdict:", "pass" if ok else "FAIL (the bystander must get 200, and every silent connection be closed)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
