"""The local engine: time from submit to ``completed`` for the seed example, against the floor of doing the same work.

Cases: one frontal + one refer JPEG at 768x1024, the same at 4096x3072, and one 1080p 5 s H.264 MP4 (video_refer).
The media is served by a loopback HTTP server in this process (tests/fakes/media_server.py); every run gets bytes
never seen before (a unique JPEG comment / MP4 ``free`` box), so the content-addressed store really writes.

- engine: ``reelgate serve`` with its workers; POST the task, then GET /v1/tasks/{id} every ~5 ms until it is
  terminal; the time from just before the POST to the first GET that shows ``completed``.
- floor: the same files fetched over HTTP with reelgate.media.fetch.load_media, checked with inspect_image /
  inspect_video and stored with the storage backend's put, back to back in this one process.

Target: median(engine) <= 2 x median(floor) + 50 ms. Also shown: the slowest poll GET seen while the tasks ran,
i.e. how long the API of that process could not answer while its worker handled the media.

    .venv/bin/python bench/element_latency.py --runs 7
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from benchkit import (
    Reelgate,
    add_tests_to_path,
    database,
    machine,
    median,
    reelgate,
    report_verdict,
    table,
    wait_for_quiet,
)

add_tests_to_path()

from fakes import mediagen  # noqa: E402
from fakes.media_server import MediaServer  # noqa: E402
from reelgate.assets import new_name  # noqa: E402
from reelgate.config import Settings  # noqa: E402
from reelgate.media.fetch import FetchLimits, load_media, make_fetch_client  # noqa: E402
from reelgate.media.images import inspect_image  # noqa: E402
from reelgate.media.video import inspect_video  # noqa: E402
from reelgate.storage import DirectoryStorage  # noqa: E402

Kind = Literal["image", "video"]
FRONTAL = "model_params.element_image_list.frontal_image"
REFER = "model_params.element_image_list.refer_images[0].image_url"
VIDEO = "model_params.element_video_list.refer_videos[0].video_url"
POLL_SECONDS = 0.005
TASK_TIMEOUT = 120.0


def jpeg_variant(data: bytes, nonce: str) -> bytes:
    """The same picture with a unique COM segment after SOI: new bytes, same pixels."""
    payload = nonce.encode()
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def mp4_variant(data: bytes, nonce: str) -> bytes:
    """The same video with a unique top-level ``free`` box appended."""
    payload = nonce.encode()
    return data + struct.pack(">I", len(payload) + 8) + b"free" + payload


def video_1080p(seconds: float = 5.0, fps: int = 30) -> bytes:
    """A 1920x1080 H.264 MP4 with motion (mediagen's pictures, scrolled), about 1 MB for 5 s."""
    return mediagen.mp4(1920, 1080, seconds=seconds, fps=fps, crf=20)


@dataclass
class Case:
    name: str
    items: list[tuple[str, Kind, bytes, str]]  # field, kind, bytes, extension
    runs: int
    engine_s: list[float] = field(default_factory=list)
    floor_s: list[float] = field(default_factory=list)
    slowest_poll_s: list[float] = field(default_factory=list)

    @property
    def size_mb(self) -> float:
        return sum(len(data) for _, _, data, _ in self.items) / 1e6


def make_cases(runs: int, video_runs: int, only: str) -> list[Case]:
    print("generating media ...", flush=True)
    cases = []
    if "small" in only:
        cases.append(Case("2 JPEG 768x1024", [(FRONTAL, "image", mediagen.jpeg(768, 1024, scene=11), "jpg"),
                                              (REFER, "image", mediagen.jpeg(768, 1024, scene=12), "jpg")], runs))  # fmt: skip
    if "large" in only:
        cases.append(Case("2 JPEG 4096x3072", [(FRONTAL, "image", mediagen.jpeg(4096, 3072, scene=21), "jpg"),
                                               (REFER, "image", mediagen.jpeg(4096, 3072, scene=22), "jpg")], runs))  # fmt: skip
    if "video" in only:
        cases.append(Case("MP4 1080p 5 s", [(VIDEO, "video", video_1080p(), "mp4")], video_runs))
    return cases


def publish(server: MediaServer, case: Case, side: str, run: int) -> list[tuple[str, Kind, str]]:
    """Serve fresh variants of the case's files; return (field, kind, url) for each."""
    out = []
    for index, (fld, kind, data, ext) in enumerate(case.items):
        nonce = f"{side}-{run}-{index}-{uuid.uuid4().hex}"
        body = jpeg_variant(data, nonce) if kind == "image" else mp4_variant(data, nonce)
        path = f"/{nonce}.{ext}"
        server.serve(path, body, "image/jpeg" if kind == "image" else "video/mp4")
        out.append((fld, kind, server.url(path)))
    return out


def task_body(urls: list[tuple[str, Kind, str]]) -> dict[str, Any]:
    params: dict[str, Any] = {"element_name": "My Character",
                              "element_description": "A young male character with short hair, wearing a white T-shirt"}  # fmt: skip
    if urls[0][1] == "video":
        params |= {"reference_type": "video_refer", "element_video_list": {"refer_videos": [{"video_url": urls[0][2]}]}}
    else:
        params |= {"reference_type": "image_refer",
                   "element_image_list": {"frontal_image": urls[0][2], "refer_images": [{"image_url": urls[1][2]}]}}  # fmt: skip
    return {"model": "kling-custom-element", "model_params": params}


async def engine_once(client: httpx.AsyncClient, urls: list[tuple[str, Kind, str]]) -> tuple[float, float]:
    """Seconds from submit to the first GET showing ``completed``, and the slowest poll GET meanwhile.

    The slowest poll shows how long the server's event loop was unavailable while the task ran (the worker and
    the API share it in ``reelgate serve``).
    """
    started = time.perf_counter()
    answer = await client.post("/v1/videos/generations", json=task_body(urls))
    answer.raise_for_status()
    task_id = answer.json()["id"]
    slowest = 0.0
    while time.perf_counter() - started < TASK_TIMEOUT:
        asked = time.perf_counter()
        task = (await client.get(f"/v1/tasks/{task_id}")).json()
        slowest = max(slowest, time.perf_counter() - asked)
        if task["status"] == "completed":
            return time.perf_counter() - started, slowest
        if task["status"] == "failed":
            raise RuntimeError(f"task {task_id} failed: {task.get('error')}")
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError(f"task {task_id} did not finish in {TASK_TIMEOUT:g} s")


class Floor:
    """The work the engine must do at the least, with the project's own functions, in one process."""

    def __init__(self, root: Path) -> None:
        s = Settings()
        self.settings = s
        self.limits = {
            kind: FetchLimits(max_bytes=s.image_max_bytes if kind == "image" else s.video_max_bytes,
                              connect_timeout=s.fetch_connect_timeout, read_timeout=s.fetch_read_timeout,
                              total_timeout=s.fetch_total_timeout)
            for kind in ("image", "video")
        }  # fmt: skip
        self.client = make_fetch_client(allow_private=True, limits=self.limits["video"])
        self.storage = DirectoryStorage(root)

    async def once(self, urls: list[tuple[str, Kind, str]]) -> float:
        started = time.perf_counter()
        for fld, kind, url in urls:
            data = await load_media(url, field=fld, kind=kind, limits=self.limits[kind], client=self.client,
                                    allow_private=True)  # fmt: skip
            if kind == "image":
                ext = inspect_image(data, field=fld, max_bytes=self.settings.image_max_bytes).ext
                await self.storage.put(new_name(ext), data)
            else:
                video = inspect_video(data, field=fld, max_bytes=self.settings.video_max_bytes)
                await self.storage.put_many([(new_name("jpg"), video.thumbnail_jpeg), (new_name(video.ext), data)])
        return time.perf_counter() - started


async def measure(rg: Reelgate, cases: list[Case], quiet_wait: float, log: Callable[[str], None]) -> None:
    with MediaServer() as server, tempfile.TemporaryDirectory(prefix="reelgate-floor-") as tmp:
        floor = Floor(Path(tmp))
        async with httpx.AsyncClient(base_url=rg.base, headers=rg.headers, timeout=30) as client:
            for case in cases:
                # One unmeasured run of each side: imports, codec set-up, first connections.
                await engine_once(client, publish(server, case, "warm-engine", 0))
                await floor.once(publish(server, case, "warm-floor", 0))
                for run in range(case.runs):
                    wait_for_quiet(quiet_wait)
                    took, slowest = await engine_once(client, publish(server, case, "engine", run))
                    case.engine_s.append(took)
                    case.slowest_poll_s.append(slowest)
                    case.floor_s.append(await floor.once(publish(server, case, "floor", run)))
                log(f"{case.name}: engine median {median(case.engine_s) * 1000:.0f} ms, "
                    f"floor median {median(case.floor_s) * 1000:.0f} ms")  # fmt: skip
        await floor.client.aclose()


def summarise(db: str, cases: list[Case]) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        engine, floor = median(case.engine_s) * 1000, median(case.floor_s) * 1000
        limit = 2 * floor + 50
        rows.append({"database": db, "case": case.name, "media_mb": round(case.size_mb, 2), "runs": case.runs,
                     "engine_median_ms": round(engine, 1), "engine_max_ms": round(max(case.engine_s) * 1000, 1),
                     "floor_median_ms": round(floor, 1), "ratio": round(engine / floor, 2),
                     "target_ms": round(limit, 1), "passed": engine <= limit,
                     "slowest_poll_ms": round(max(case.slowest_poll_s) * 1000, 1),
                     "engine_runs_ms": [round(x * 1000, 1) for x in case.engine_s],
                     "floor_runs_ms": [round(x * 1000, 1) for x in case.floor_s]})  # fmt: skip
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    headers = ["db", "case", "MB", "runs", "engine p50 ms", "floor p50 ms", "engine/floor", "target ms", "result",
               "slowest poll GET ms"]  # fmt: skip
    return table(headers, [[r["database"], r["case"], r["media_mb"], r["runs"], r["engine_median_ms"],
                            r["floor_median_ms"], f"{r['ratio']:.2f}x", f"<= {r['target_ms']:.0f}",
                            "PASS" if r["passed"] else "FAIL", r["slowest_poll_ms"]] for r in rows])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="measured runs per image case (default 7)")
    parser.add_argument("--video-runs", type=int, default=5, help="measured runs of the video case (default 5)")
    parser.add_argument("--cases", default="small,large,video", help="comma list: small,large,video")
    parser.add_argument("--databases", default="sqlite", help="comma list: sqlite,postgres (default sqlite)")
    parser.add_argument("--duration", type=float, default=None,
                        help="accepted for symmetry with the other scripts: scales --runs (runs = duration / 2)")  # fmt: skip
    parser.add_argument("--quiet-wait", type=float, default=5, help="max seconds to wait for a quiet machine per run")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    if args.duration is not None:
        args.runs = max(3, round(args.duration / 2))
        args.video_runs = max(3, round(args.duration / 3))
    info = machine()
    rows: list[dict[str, Any]] = []
    for kind in args.databases.split(","):
        cases = make_cases(args.runs, args.video_runs, args.cases)
        with database(kind) as db, reelgate(db) as rg:
            asyncio.run(measure(rg, cases, args.quiet_wait, lambda line: print(line, flush=True)))
        rows += summarise(kind, cases)
    print("\nelement latency: submit -> completed (engine) vs fetch+inspect+hash+store in one process (floor)")
    print(render(rows))
    passed = all(r["passed"] for r in rows)
    return report_verdict("element_latency", info, args, passed, rows)


if __name__ == "__main__":
    sys.exit(main())
