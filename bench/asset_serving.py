"""Serving a stored 50 MB asset: Reelgate's ``GET /assets/<name>`` from each storage backend against a plain
static-file server on the same machine, and the API process's memory while it streams ten such assets at once.

Targets (issue 22): throughput of each backend >= 0.8x the static-file server's (median over rounds), and the
``reelgate serve`` process's RSS growth <= 32 MB while ten 50 MB downloads run at once.

    .venv/bin/python bench/asset_serving.py --mib 50 --rounds 7

The floor is ``python -m http.server`` serving the same file from the same directory: a plain static-file server
doing nothing but copying (a thread per connection, blocking reads and writes of 64 KiB), and on this machine the
fastest plain one to hand. Starlette's ``StaticFiles`` under the same uvicorn options as ``reelgate serve`` is shown
too, but is no fair floor: it hands every 64 KiB chunk to a thread and measured at a third of http.server's speed,
so beating it would prove little. A C server using sendfile (nginx) is no fair floor either: it measures zero-copy
kernel transfers no Python server makes. The S3 backend reads from moto's S3 server (a separate Python process on
loopback, sharing the two cores); a direct GET of the object from that server is shown as the bucket's own speed,
which bounds what any proxy of it can reach, and so is Reelgate redirecting to a presigned URL
(REELGATE_S3_PRESIGN_SECONDS), where the bytes come from the bucket itself. Downloads are made by ``curl`` (C, to
/dev/null, following redirects) so the client costs little of the two cores; rounds alternate the order of the
servers. Everything talks to 127.0.0.1 only; every server is started in its own process group and stopped by it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import median

import httpx
from benchkit import ROOT, Process, database, free_port, machine, reelgate, report_verdict, rss_mb, table

MB = 1_000_000
MIB = 1024 * 1024
BUCKET, PREFIX = "bench-assets", "media"
FLOOR = "python -m http.server"
S3_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_REGION": "us-east-1"}

STATIC = r"""
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from reelgate.api.server import BoundedHttpToolsProtocol

directory, port = sys.argv[1], int(sys.argv[2])
app = Starlette(routes=[Mount("/assets", StaticFiles(directory=directory))])
uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http=BoundedHttpToolsProtocol, access_log=False,
            log_config=None, timeout_keep_alive=30, backlog=2048, limit_concurrency=4096, log_level="warning")
"""


def make_assets(directory: Path, count: int, mib: int) -> list[str]:
    """``count`` distinct incompressible MP4-named files of ``mib`` MiB under capability-shaped names."""
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        name = f"{'bench' + str(i):_<32}.mp4"
        with (directory / name).open("wb") as handle:
            for _ in range(mib):
                handle.write(os.urandom(MIB))
        names.append(name)
    return names


def curl(url: str) -> tuple[int, float]:
    """Download ``url`` to /dev/null: bytes and seconds, as curl measured them."""
    done = subprocess.run(["curl", "-sS", "-f", "-L", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
                          capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    size, seconds = done.stdout.split()
    return int(size), float(seconds)


def mb_per_s(url: str, expect: int) -> float:
    size, seconds = curl(url)
    if size != expect:
        raise SystemExit(f"{url}: got {size} bytes, expected {expect}")
    return size / seconds / MB


@contextlib.contextmanager
def moto_server(log_dir: Path) -> Iterator[Process]:
    port = free_port()
    proc = Process([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                   dict(os.environ), log_dir / "moto.log")  # fmt: skip
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/moto-api/")
        proc.port = port
        yield proc
    finally:
        proc.stop()


def upload(endpoint: str, directory: Path, names: list[str]) -> None:
    import boto3  # moto's own dependency (the dev extras), for the set-up only

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=S3_ENV["AWS_REGION"],
                      aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)
    for name in names:
        s3.upload_file(str(directory / name), BUCKET, f"{PREFIX}/{name}", ExtraArgs={"ContentType": "video/mp4"})


class RssPeak:
    """The highest RSS of some processes (summed), sampled every 5 ms on a thread while a block runs."""

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak, self._stop = pids, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> float:
        return sum(rss_mb(pid) for pid in self.pids)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.005)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def ten_at_once(proc: Process, urls: list[str], expect: int) -> tuple[float, float, float]:
    """RSS before, peak RSS growth while ``urls`` download at once, and the seconds it took."""
    watch = RssPeak(proc.pids())
    before = watch.now()
    started = time.monotonic()
    with watch:
        downloads = [subprocess.Popen(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}", url],
                                      stdout=subprocess.PIPE, text=True) for url in urls]  # fmt: skip
        sizes = [int(d.communicate(timeout=600)[0] or 0) for d in downloads]
    if sizes != [expect] * len(urls) or any(d.returncode for d in downloads):
        raise SystemExit(f"ten at once: sizes {sizes}")
    return before, watch.peak - before, time.monotonic() - started


def paired_ratio(ours: list[float], floor: list[float]) -> float:
    """The median of each round's ratio: both were measured within seconds of each other, so a round on a busier
    moment of a shared machine slows both."""
    return median(a / b for a, b in zip(ours, floor, strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=50, help="size of each asset (MiB)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of one download from each server")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    info = machine()
    size = args.mib * MIB
    with tempfile.TemporaryDirectory(prefix="reelgate-assets-") as tmp:
        tmp_dir = Path(tmp)
        assets = tmp_dir / "assets"
        names = make_assets(assets, 10, args.mib)
        with contextlib.ExitStack() as stack:
            moto = stack.enter_context(moto_server(tmp_dir))
            endpoint = f"http://127.0.0.1:{moto.port}"
            upload(endpoint, assets, names)
            static_port = free_port()
            static = Process([sys.executable, "-c", STATIC, str(assets), str(static_port)],
                             {**os.environ, "PYTHONPATH": str(ROOT / "src")}, tmp_dir / "static.log")  # fmt: skip
            stack.callback(static.stop)
            static.wait_http(f"http://127.0.0.1:{static_port}/assets/{names[0]}")
            stdlib_port = free_port()
            stdlib = Process([sys.executable, "-m", "http.server", str(stdlib_port), "--bind", "127.0.0.1",
                              "--directory", str(tmp_dir)], dict(os.environ), tmp_dir / "stdlib.log")  # fmt: skip
            stack.callback(stdlib.stop)
            stdlib.wait_http(f"http://127.0.0.1:{stdlib_port}/assets/{names[0]}")
            directory_db = stack.enter_context(database("sqlite"))
            s3_db = stack.enter_context(database("sqlite"))
            on_dir = stack.enter_context(reelgate(directory_db, no_tasks=True, REELGATE_STORAGE_URL=f"file://{assets}"))
            s3_env = {"REELGATE_STORAGE_URL": f"s3://{BUCKET}/{PREFIX}", "REELGATE_S3_ENDPOINT_URL": endpoint, **S3_ENV}
            on_s3 = stack.enter_context(reelgate(s3_db, no_tasks=True, **s3_env))
            presign_db = stack.enter_context(database("sqlite"))
            on_s3_presigned = stack.enter_context(reelgate(presign_db, no_tasks=True, REELGATE_S3_PRESIGN_SECONDS="300",
                                                           **s3_env))  # fmt: skip
            targets = {
                FLOOR: f"http://127.0.0.1:{stdlib_port}/assets/{{}}",
                "Reelgate, directory": f"{on_dir.base}/assets/{{}}",
                "Reelgate, S3": f"{on_s3.base}/assets/{{}}",
                "bucket direct (moto)": f"{endpoint}/{BUCKET}/{PREFIX}/{{}}",
                "Reelgate, S3 presigned redirect": f"{on_s3_presigned.base}/assets/{{}}",
                "Starlette StaticFiles": f"http://127.0.0.1:{static_port}/assets/{{}}",
            }
            for url in targets.values():  # warm-up: page cache, imports, the S3 client's model and connections
                mb_per_s(url.format(names[0]), size)
            assert httpx.head(targets["Reelgate, S3"].format(names[0])).headers["etag"]
            speeds: dict[str, list[float]] = {label: [] for label in targets}
            for r in range(args.rounds):
                order = list(targets) if r % 2 == 0 else list(reversed(targets))
                for label in order:
                    speeds[label].append(mb_per_s(targets[label].format(names[r % len(names)]), size))
                print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f} MB/s" for k, v in speeds.items()))
            memory = {}
            for label, server in (("Reelgate, directory", on_dir), ("Reelgate, S3", on_s3)):
                before, growth, seconds = ten_at_once(server.proc, [targets[label].format(n) for n in names], size)
                memory[label] = {"rss_before_mb": before, "growth_mb": growth, "seconds": seconds}
                print(f"  ten at once, {label}: RSS {before:.0f} MB, peak growth {growth:.1f} MB, {seconds:.2f} s")
    floor = median(speeds[FLOOR])
    rows, passed = [], True
    for label in ("Reelgate, directory", "Reelgate, S3"):
        ratio = paired_ratio(speeds[label], speeds[FLOOR])
        growth = memory[label]["growth_mb"]
        ok = ratio >= 0.8 and growth <= 32
        passed &= ok
        rows.append([f"{args.mib} MiB from {label.split(', ')[1]}", f"{median(speeds[label]):.0f} MB/s vs "
                     f"{floor:.0f} MB/s", f"{ratio:.2f}x", f"{growth:.1f} MB", ">= 0.8x, <= 32 MB", ok])  # fmt: skip
    bucket = "bucket direct (moto)"
    rows.append([f"{args.mib} MiB from S3 vs the bucket itself", f"{median(speeds['Reelgate, S3']):.0f} MB/s vs "
                 f"{median(speeds[bucket]):.0f} MB/s", f"{paired_ratio(speeds['Reelgate, S3'], speeds[bucket]):.2f}x",
                 "-", "(reference)", "-"])  # fmt: skip
    for label in (bucket, "Reelgate, S3 presigned redirect", "Starlette StaticFiles"):
        rows.append([f"{args.mib} MiB, {label}", f"{median(speeds[label]):.0f} MB/s",
                     f"{paired_ratio(speeds[label], speeds[FLOOR]):.2f}x", "-", "(reference)", "-"])  # fmt: skip
    print()
    print(table(["case", f"throughput (median) vs {FLOOR}", "ratio", "RSS growth, 10 at once", "target", "result"],
                rows))  # fmt: skip
    return report_verdict("asset_serving", info, args, passed, {"speeds_mb_s": speeds, "memory": memory, "rows": rows})


if __name__ == "__main__":
    raise SystemExit(main())
