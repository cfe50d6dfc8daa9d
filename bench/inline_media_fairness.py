"""One tenant's Base64 uploads against another tenant's task query: latency of the victim, and what hit the disk.

A victim polls ``GET /v1/tasks/{id}`` of its own task, one request at a time, first alone, then while a hostile
tenant's clients push ~40 MB Base64 bodies (four ~7.4 MB JPEGs, each at the 10 MB image limit's scale) as fast as
the server answers them. Two hostile tenants:

- ``zero-credit``: an account with no credits (issue 18: every answer is 402);
- ``refused``: a funded account whose refer images are the frontal image again, so each body is decoded and
  inspected in full and answered 400 (near-duplicate): the most CPU a tenant can make the server spend for free.

Reported per scenario: the victim's p50/p99/max alone and under load, the hostile answers by status, and the files
and bytes the hostile tenant left in the asset store (a refused upload must leave none). Before measuring, the
victim makes one small upload of its own, which starts the media pool where there is one. The server is ``reelgate serve
--no-tasks`` on SQLite (the URL-only victim task is never run), on loopback only.

    .venv/bin/python bench/inline_media_fairness.py --duration 15
    PYTHONPATH=/tmp/rg-before/src .venv/bin/python bench/inline_media_fairness.py   # another checkout's code
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from benchkit import SEED_BODY, create_key, database, git_commit, percentile, reelgate, table, write_results
from PIL import Image

SCENARIOS = ("zero-credit", "refused")


def _jpeg(seed: int, side: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    return out.getvalue()


def hostile_body(scenario: str, side: int) -> bytes:
    """Four JPEGs as data URIs: four different pictures, or (refused) the same picture four times."""
    seeds = [1, 1, 1, 1] if scenario == "refused" else [1, 2, 3, 4]
    uris = ["data:image/jpeg;base64," + base64.b64encode(_jpeg(s, side)).decode() for s in seeds]
    params = json.loads(json.dumps(SEED_BODY["model_params"]))
    params["element_image_list"] = {"frontal_image": uris[0], "refer_images": [{"image_url": u} for u in uris[1:]]}
    return json.dumps({"model": SEED_BODY["model"], "model_params": params}).encode()


def _small_upload() -> dict[str, Any]:
    params = json.loads(json.dumps(SEED_BODY["model_params"]))
    uris = ["data:image/jpeg;base64," + base64.b64encode(_jpeg(s, 400)).decode() for s in (7, 8)]
    params["element_image_list"] = {"frontal_image": uris[0], "refer_images": [{"image_url": uris[1]}]}
    return {"model": SEED_BODY["model"], "model_params": params}


def _hostile(url: str, key: str, body_path: str, until: float, out: Any) -> None:
    body = Path(body_path).read_bytes()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    statuses: Counter[str] = Counter()
    with httpx.Client(timeout=120) as client:
        while time.monotonic() < until:
            try:
                statuses[str(client.post(url, content=body, headers=headers).status_code)] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
    out.put(dict(statuses))


def poll(client: httpx.Client, path: str, seconds: float, pause: float) -> list[float]:
    """Latencies (ms) of one GET at a time for ``seconds``; every answer must be 200."""
    samples: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        answer = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise AssertionError(f"victim GET answered {answer.status_code}: {answer.text[:200]}")
        time.sleep(pause)
    return samples


def _stats(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "p50": percentile(samples, 50), "p99": percentile(samples, 99), "max": max(samples)}


def _stored(data_dir: Path) -> dict[str, int]:
    root = data_dir / "assets"
    return {p.name: p.stat().st_size for p in root.iterdir() if p.is_file()} if root.is_dir() else {}


def run_scenario(scenario: str, args: argparse.Namespace, body_path: Path) -> dict[str, Any]:
    with database("sqlite") as db, reelgate(db, no_tasks=True) as server:
        base = f"http://127.0.0.1:{server.port}"
        victim = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {server.key}"}, timeout=30)
        task_id = victim.post("/v1/videos/generations", json=SEED_BODY).json()["id"]
        hostile_key = create_key(server.env, account="hostile", credits="0" if scenario == "zero-credit" else "1000")
        # Warm-up: the victim's own small upload starts the media pool (where there is one), then polls.
        victim.post("/v1/videos/generations", json=_small_upload()).raise_for_status()
        poll(victim, f"/v1/tasks/{task_id}", 1.0, args.pause)
        victims_files = _stored(server.data_dir)
        alone = poll(victim, f"/v1/tasks/{task_id}", args.idle, args.pause)
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        until = time.monotonic() + args.duration + 2
        clients = [ctx.Process(target=_hostile, args=(f"{base}/v1/videos/generations", hostile_key, str(body_path),
                                                     until, results)) for _ in range(args.clients)]  # fmt: skip
        for c in clients:
            c.start()
        time.sleep(1.0)  # let the uploads get going
        loaded = poll(victim, f"/v1/tasks/{task_id}", args.duration, args.pause)
        statuses: Counter[str] = Counter()
        for _ in clients:
            statuses.update(results.get(timeout=180))
        for c in clients:
            c.join(30)
        victim.close()
        left = {n: b for n, b in _stored(server.data_dir).items() if n not in victims_files}  # the hostile's
        return {"scenario": scenario, "alone": _stats(alone), "loaded": _stats(loaded), "hostile": dict(statuses),
                "asset_files": len(left), "asset_mb": round(sum(left.values()) / 1e6, 1)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of victim polling under load")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of victim polling alone")
    parser.add_argument("--clients", type=int, default=2, help="hostile clients (one process each)")
    parser.add_argument("--side", type=int, default=2500, help="JPEG side in pixels (2500: ~7.4 MB each)")
    parser.add_argument("--pause", type=float, default=0.01, help="seconds between two victim GETs")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    rows, out = [], []
    for scenario in args.scenarios.split(","):
        body_path = Path(f"/tmp/reelgate-bench-hostile-{scenario}-{args.side}.json")
        if not body_path.exists():
            body_path.write_bytes(hostile_body(scenario, args.side))
        print(f"{scenario}: hostile body {body_path.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
        result = run_scenario(scenario, args, body_path)
        out.append(result)
        a, b = result["alone"], result["loaded"]
        rows.append([scenario, a["p50"], a["p99"], b["n"], b["p50"], b["p99"], b["max"],
                     " ".join(f"{k}x{v}" for k, v in sorted(result["hostile"].items())),
                     result["asset_files"], result["asset_mb"]])  # fmt: skip
    print(table(["scenario", "alone p50 ms", "alone p99 ms", "GETs", "loaded p50 ms", "loaded p99 ms", "max ms",
                 "hostile answers", "asset files", "asset MB"], rows))  # fmt: skip
    info = {"cpus": os.cpu_count(), "commit": git_commit(), "loadavg_at_start": os.getloadavg()}
    path = write_results("inline_media_fairness", {"machine": info, "args": vars(args), "rows": out}, args.json_out)
    print(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
