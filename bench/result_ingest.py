"""Ingest of a large result video: Reelgate's download path against a plain streamed copy of the same bytes.

A Kling result must come home into Reelgate's storage without the worker ever holding it whole. This measures the
worker's real path, ``providers.kling.results.store_result`` (netguard-checked client, MP4 check, size cap,
``AssetStore.save_stream`` into the directory backend, fsync, ownership row), against a plain streamed copy between
the same two endpoints: httpx streaming the same URL into a file in the same directory (the floor). Both run in a
fresh process each, so the peak RSS growth of each is its own; rounds alternate A and B over one origin (a separate
``python -m http.server`` process serving a generated file).

    .venv/bin/python bench/result_ingest.py --mib 200 --rounds 3

Targets (issue 20): median time ratio (Reelgate / plain copy) <= 1.5, and the ingest's peak RSS growth < 32 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from benchkit import ROOT, free_port, machine, table, write_results

CHILD = r"""
import asyncio, json, os, resource, sys, time
from pathlib import Path

import httpx

mode, url, out_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def plain() -> int:
    size = 0
    async with httpx.AsyncClient(timeout=60) as client, client.stream("GET", url) as response:
        with open(out_dir / "plain.mp4", "wb") as handle:
            async for chunk in response.aiter_raw():
                handle.write(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    return size


async def ingest() -> int:
    from reelgate.assets import AssetStore
    from reelgate.media.fetch import FetchLimits, make_fetch_client
    from reelgate.providers.kling.results import store_result
    from reelgate.storage import DirectoryStorage

    limits = FetchLimits(max_bytes=2**40, connect_timeout=5, read_timeout=60, total_timeout=600)
    client = make_fetch_client(allow_private=True, limits=limits)
    assets = AssetStore(DirectoryStorage(out_dir / "objects"))
    try:
        _, size = await store_result(client, url, assets, account_id=1, task_id="bench", max_bytes=2**40,
                                     total_timeout=600, allow_private=True)
    finally:
        await client.aclose()
    return size


async def main() -> None:
    run = plain if mode == "plain" else ingest
    if mode != "plain":  # import and warm the whole path first, so the peak below is the transfer's own
        from reelgate.providers.kling import results  # noqa: F401
    base_rss, base_peak = rss_mb(), peak_mb()
    started = time.perf_counter()
    size = await run()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "bytes": size, "peak_growth_mb": peak_mb() - max(base_peak, base_rss)}))


asyncio.run(main())
"""


def make_video_file(path: Path, mib: int) -> None:
    """An MP4-shaped file (an ``ftyp`` box, then incompressible bytes) of ``mib`` MiB, written in 1 MiB chunks."""
    with path.open("wb") as handle:
        handle.write(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2")
        for _ in range(mib):
            handle.write(os.urandom(2**20))


def run_child(mode: str, url: str, out_dir: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", CHILD, mode, url, str(out_dir)], env=env, capture_output=True,
                          text=True, timeout=900, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    for leftover in out_dir.rglob("*.mp4"):
        leftover.unlink()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reelgate-ingest-") as tmp:
        root, out = Path(tmp) / "origin", Path(tmp) / "out"
        root.mkdir()
        out.mkdir()
        make_video_file(root / "result.mp4", args.mib)
        port = free_port()
        origin = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                   "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            time.sleep(1.0)
            url = f"http://127.0.0.1:{port}/result.mp4"
            run_child("plain", url, out)  # warm-up, not counted: the origin's file into the page cache
            rounds = []
            for i in range(args.rounds):
                order = ("plain", "ingest") if i % 2 == 0 else ("ingest", "plain")
                got = {mode: run_child(mode, url, out) for mode in order}
                rounds.append(got)
                print(
                    f"  round {i + 1}: plain {got['plain']['seconds']:.2f} s, ingest {got['ingest']['seconds']:.2f} s "
                    f"(ratio {got['ingest']['seconds'] / got['plain']['seconds']:.2f}); peak RSS growth plain "
                    f"{got['plain']['peak_growth_mb']:.1f} MB, ingest {got['ingest']['peak_growth_mb']:.1f} MB"
                )
        finally:
            origin.terminate()
            origin.wait(timeout=10)
    ratio = median(r["ingest"]["seconds"] / r["plain"]["seconds"] for r in rounds)
    growth = max(r["ingest"]["peak_growth_mb"] for r in rounds)
    plain_s, ingest_s = median(r["plain"]["seconds"] for r in rounds), median(r["ingest"]["seconds"] for r in rounds)
    verdict = "PASS" if ratio <= 1.5 and growth < 32 else "FAIL"
    rows = [[f"{args.mib} MiB result over loopback", f"plain copy {plain_s:.2f} s ({args.mib / plain_s:.0f} MiB/s), "
             f"Reelgate ingest {ingest_s:.2f} s ({args.mib / ingest_s:.0f} MiB/s)", f"ratio {ratio:.2f}, peak RSS "
             f"growth {growth:.1f} MB", "<= 1.5, < 32 MB", verdict]]  # fmt: skip
    print()
    print(table(["case", "figures", "judged by", "target", "result"], rows))
    write_results("result_ingest", {"machine": machine(), "rounds": rounds, "ratio": ratio, "peak_growth_mb": growth,
                                    "verdict": verdict})  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
