"""``reelgate video create`` and the demo's video step through the real entry point: against a server without a Kling
channel, and against one whose channel is the fake Kling server (the element-then-video flow, offline)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import av

from client.live import REELGATE
from fakes.kling_server import FakeKling
from kling.harness import AK, SK, channel, write_config

Run = Callable[..., subprocess.CompletedProcess[str]]
MODEL = "kling-o3-text-to-video"


def _seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert stream.average_rate is not None
        return frames / float(stream.average_rate)


def _element(run: Run, pictures: tuple[Path, Path]) -> str:
    front, side = pictures
    done = run("element", "create", "--name", "Rover", "--description", "upstream", "--front", str(front),
               "--refer", str(side), "--wait")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_usage_errors_exit_2_before_any_request(reelgate: Run, tmp_path: Path) -> None:
    local = tmp_path / "start.jpg"
    local.write_bytes(b"\xff\xd8\xff")
    no_model = reelgate("video", "create", "--prompt", "a cat")
    local_file = reelgate("video", "create", "--model", MODEL, "--image-start", str(local))
    bad_param = reelgate("video", "create", "--model", MODEL, "--param", "multi_shot")
    assert no_model.returncode == 2 and "--model" in no_model.stderr
    assert local_file.returncode == 2 and local_file.stdout == ""
    assert local_file.stderr.startswith("error: image_start: video models take media as http(s) URLs")
    assert bad_param.returncode == 2 and "KEY=VALUE" in bad_param.stderr


def test_without_a_channel_the_refusal_is_one_clear_line(reelgate: Run) -> None:
    done = reelgate("video", "create", "--model", MODEL, "--prompt", "a cat", "--wait")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert done.stderr.endswith("(model_not_available, param model)\n") and "Kling channel" in done.stderr


def test_video_create_wait_output(kling_reelgate: Run, pictures: tuple[Path, Path], tmp_path: Path) -> None:
    element_id = _element(kling_reelgate, pictures)
    out = tmp_path / "clips" / "out.mp4"
    done = kling_reelgate("video", "create", "--model", MODEL, "--element", element_id, "--prompt",
                          "<<<element_1>>> waves", "--duration", "3", "--sound", "off", "--output", str(out),
                          timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    urls = done.stdout.strip().splitlines()
    assert urls and all("/assets/" in u and u.endswith(".mp4") for u in urls)  # stdout: just the URLs
    assert "100%" in done.stderr and "━" in done.stderr and f"saved {out}" in done.stderr
    assert abs(_seconds(out) - 3.0) < 0.25

    task_id = re.search(r"task-unified-\d+-[a-z0-9]{8}", done.stderr)
    assert task_id, done.stderr
    shown = kling_reelgate("task", "get", task_id.group(0))
    assert shown.returncode == 0 and urls[0] in shown.stdout.replace("\n", "").replace("│", "").replace(" ", "")
    as_json = json.loads(kling_reelgate("task", "get", task_id.group(0), "--json").stdout)
    assert as_json["results"] == urls and "result_data" not in as_json


def test_submit_only_then_video_wait_and_download_and_an_unwritable_output(
    kling_reelgate: Run, pictures: tuple[Path, Path], tmp_path: Path
) -> None:
    element_id = _element(kling_reelgate, pictures)
    submitted = kling_reelgate("video", "create", "--model", MODEL, "--element", element_id, "--prompt",
                               "<<<element_1>>> sits", "--duration", "3", "--json")  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    task = json.loads(submitted.stdout)
    assert task["status"] in ("pending", "processing") and task["usage"]["billing_rule"] == "per_second"
    waited = kling_reelgate("video", "wait", task["id"], "-o", str(tmp_path / "waited.mp4"), timeout=180)
    assert waited.returncode == 0, waited.stderr
    url = waited.stdout.strip()  # client.videos.wait: the video URL alone on stdout
    assert "/assets/" in url and url.endswith(".mp4") and "100%" in waited.stderr

    by_id = kling_reelgate("video", "download", task["id"], "--output", str(tmp_path / "by-id.mp4"))
    by_url = kling_reelgate("video", "download", url, "-o", str(tmp_path / "by-url.mp4"))
    assert by_id.returncode == by_url.returncode == 0, (by_id.stderr, by_url.stderr)
    assert f"saved {tmp_path / 'by-id.mp4'}" in by_id.stderr and by_id.stdout == ""
    saved = {name: (tmp_path / name).read_bytes() for name in ("waited.mp4", "by-id.mp4", "by-url.mp4")}
    assert (
        saved["waited.mp4"] == saved["by-id.mp4"] == saved["by-url.mp4"]
        and abs(_seconds(tmp_path / "by-id.mp4") - 3) < 0.25
    )

    blocked = kling_reelgate("video", "create", "--model", MODEL, "--element", element_id, "--prompt",
                             "<<<element_1>>> runs", "--duration", "3", "--output", "/dev/null/out.mp4",
                             timeout=180)  # fmt: skip
    assert blocked.returncode == 2 and blocked.stderr.splitlines()[-1].startswith("error: cannot write /dev/null/out")


def test_demo_with_a_kling_channel_shows_the_element_then_the_video(tmp_path: Path) -> None:
    with FakeKling(access_keys={AK: SK}) as fake:
        channels = write_config(tmp_path / "kling.json", [channel("fake", fake)])
        env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
        env["REELGATE_KLING_CONFIG"] = channels
        done = subprocess.run([REELGATE, "demo", "--keep", "--no-wait"], env=env, capture_output=True, text=True,
                              timeout=180, check=False)  # fmt: skip
    kept = re.search(r"data kept in (\S+)", done.stderr)
    try:
        assert done.returncode == 0, done.stderr
        assert "A Kling channel is configured" in done.stdout and "needs an upstream Kling channel" not in done.stdout
        assert re.search(r"element_id \d+", done.stdout) and "video generated" in done.stdout
        assert re.search(r"video http://127\.0\.0\.1:\d+/assets/\S+\.mp4", done.stdout)
        assert kept and abs(_seconds(Path(kept.group(1)) / "demo.mp4") - 5.0) < 0.25
    finally:
        if kept:
            shutil.rmtree(kept.group(1), ignore_errors=True)
