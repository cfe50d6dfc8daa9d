"""EvoLink's own published MCP client, ``@evolinkai/evolink-media`` 1.2.1 from npm, drives Reelgate's Kling video
models unchanged: it submits with ``generate_video``, polls with ``check_task`` until it renders the completion, and
the result URLs it renders are Reelgate's ``/assets/...mp4``, which download as real MP4s of the requested length.

The client is installed once, exactly pinned, into a cache outside the repository (~/.cache/reelgate-tests, or
$XDG_CACHE_HOME) and started with node as its README says, with ``EVOLINK_API_KEY`` set to a Reelgate key. Its API
origin is hard-coded (``https://api.evolink.ai``, in its dist/core/src/config.js) with no setting, so the only thing
changed is that origin: the preload ``tests/fakes/evolink_base_url.mjs`` (``node --import``) wraps fetch to rewrite it
to the real ``reelgate serve`` on 127.0.0.1 and refuses any request that would leave loopback. Everything else (the
fake Kling channel, the media server of the reference image) is on loopback too. Python speaks MCP JSON-RPC over the
child's stdio (tests/fakes/mcp_stdio.py). Without node or npm the test skips, and fails under
REELGATE_REQUIRE_POSTGRES=1 (CI), like the PostgreSQL tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import av
import httpx
import pytest

from fakes.kling_server import FakeKling
from fakes.mcp_stdio import McpStdio, ToolResult
from fakes.media_server import MediaServer
from fakes.mediagen import jpeg
from kling.harness import AK, SK, channel, write_config
from procs import create_key, free_port, reelgate_env, serve

PACKAGE = "@evolinkai/evolink-media"
VERSION = "1.2.1"
SHIM = Path(__file__).resolve().parents[1] / "fakes" / "evolink_base_url.mjs"
TASK_ID = re.compile(r"^Task ID: (\S+)$", re.M)
RESULT = re.compile(r"^\s+\[(\d+)\] (\S+)$", re.M)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("REELGATE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason}; REELGATE_REQUIRE_POSTGRES=1 (CI) forbids skipping the EvoLink client test")
    pytest.skip(f"{reason}: the EvoLink client test is skipped")


def _cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "reelgate-tests" / f"evolink-media-{VERSION}"


def _installed_bin(prefix: Path) -> Path | None:
    """The client's bin script when ``prefix`` holds exactly version VERSION, else None."""
    package = prefix / "node_modules" / PACKAGE
    try:
        meta = json.loads((package / "package.json").read_text())
    except (OSError, ValueError):
        return None
    script = package / meta.get("bin", {}).get("evolink-media", "")
    return script if meta.get("version") == VERSION and script.is_file() else None


def _install(npm: str, prefix: Path) -> Path:
    """npm install into a scratch directory beside ``prefix``, then move it into place (never half-installed)."""
    scratch = prefix.with_name(f"{prefix.name}.partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(scratch), f"{PACKAGE}@{VERSION}"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    if done.returncode != 0 or _installed_bin(scratch) is None:
        shutil.rmtree(scratch, ignore_errors=True)
        _unavailable(f"npm install {PACKAGE}@{VERSION} failed: {done.stderr[-1500:]}")
    shutil.rmtree(prefix, ignore_errors=True)
    scratch.rename(prefix)
    script = _installed_bin(prefix)
    assert script is not None
    return script


@pytest.fixture(scope="session")
def evolink_media() -> tuple[str, Path]:
    """(node, the client's bin script), installing the pinned package once per machine."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable(f"{'node' if node is None else 'npm'} is not on PATH (needed to run {PACKAGE})")
    prefix = _cache_dir()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with (prefix.parent / f"{prefix.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions at once install once
        script = _installed_bin(prefix) or _install(npm, prefix)
    return node, script


@dataclass
class Gateway:
    base: str
    key: str
    fake: FakeKling
    media: MediaServer

    def task(self, task_id: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.base}/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {self.key}"})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture
def gateway(tmp_path: Path, db_url: str) -> Iterator[Gateway]:
    """A real ``reelgate serve`` on loopback with one Kling channel at the fake Kling, and a funded key."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with FakeKling(access_keys={AK: SK}) as fake, MediaServer() as media:
        config = write_config(tmp_path / "kling.json", [channel("main", fake)])
        env = reelgate_env(tmp_path / "data", db_url, REELGATE_KLING_CONFIG=config, REELGATE_PUBLIC_BASE_URL=base)
        key = create_key(env, credits=5000)
        server = serve(env, port, tmp_path / "serve.log")
        try:
            yield Gateway(base, key, fake, media)
        finally:
            server.stop()


@contextlib.contextmanager
def _client(evolink_media: tuple[str, Path], gateway: Gateway, tmp_path: Path) -> Iterator[McpStdio]:
    node, script = evolink_media
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "EVOLINK_API_KEY": gateway.key,
           "EVOLINK_TEST_BASE_URL": gateway.base, "EVOLINK_TEST_FETCH_LOG": str(tmp_path / "fetch.jsonl")}  # fmt: skip
    argv = [node, "--import", SHIM.as_uri(), str(script)]
    with McpStdio(argv, env=env, stderr=tmp_path / "evolink-media.stderr") as mcp:
        yield mcp


def _fetches(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "fetch.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _clean(result: ToolResult) -> str:
    """The rendered text, checked for the marks of a field the client expected and Reelgate did not give."""
    assert not result.is_error, result.text
    assert "undefined" not in result.text and "NaN" not in result.text and "null" not in result.text, result.text
    return result.text


def _submit(mcp: McpStdio, gateway: Gateway, arguments: dict[str, Any]) -> str:
    text = _clean(mcp.call_tool("generate_video", arguments))
    found = TASK_ID.search(text)
    assert found is not None and text.startswith("Video generation task submitted."), text
    task = gateway.task(found[1])
    # The submit answer as the client renders it: Reelgate's id, estimate and reservation.
    assert f"Estimated time: ~{task['task_info']['estimated_time']}s" in text, text
    assert f"Estimated cost: {task['usage']['credits_reserved']} credits (per_second)" in text, text
    return str(found[1])


def _poll(mcp: McpStdio, task_id: str, timeout: float = 60.0) -> str:
    """check_task until the client renders an end state; every rendering on the way must be whole."""
    deadline = time.monotonic() + timeout
    while True:
        text = _clean(mcp.call_tool("check_task", {"task_id": task_id}))
        assert text.startswith(f"Task ID: {task_id}\n"), text
        if re.search(r"^Status: (completed|failed)$", text, re.M):
            return text
        assert re.search(r"^Status: (pending|processing)$", text, re.M), text
        assert "Call check_task again" in text, text
        assert time.monotonic() < deadline, f"the task did not end within {timeout} s:\n{text}"
        time.sleep(0.2)


def _seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as media:
        assert media.duration is not None and media.streams.video, "not a video"
        return float(media.duration / av.time_base)


def _check_results(text: str, gateway: Gateway, task_id: str, seconds: int) -> None:
    assert "Status: completed" in text and "Progress: 100%" in text, text
    urls = [url for _, url in sorted(RESULT.findall(text))]
    assert urls and urls == gateway.task(task_id)["results"], text
    for url in urls:
        assert url.startswith(f"{gateway.base}/assets/") and url.endswith(".mp4"), url
        video = httpx.get(url, timeout=10)
        assert video.status_code == 200 and abs(_seconds(video.content) - seconds) < 0.5


CASES = [  # (the client's generate_video arguments, the fake Kling endpoint, the seconds of the result)
    ({"model": "kling-v3-text-to-video", "prompt": "surf at dawn", "duration": 3, "quality": "720p",
      "aspect_ratio": "16:9", "generate_audio": True}, "text2video", 3),
    ({"model": "kling-o3-text-to-video", "prompt": "a lighthouse in fog", "duration": 4, "aspect_ratio": "9:16"},
     "omni-video", 4),
    ({"model": "kling-o3-image-to-video", "prompt": "the scene comes alive", "duration": 3,
      "image_urls": ["{media}/reference.jpg"]}, "omni-video", 3),
]  # fmt: skip


def _with_media(arguments: dict[str, Any], gateway: Gateway) -> dict[str, Any]:
    urls = [url.replace("{media}", gateway.media.url("")) for url in arguments.get("image_urls", [])]
    return {**arguments, **({"image_urls": urls} if urls else {})}


def test_evolink_media_client_drives_kling_video_models(
    evolink_media: tuple[str, Path], gateway: Gateway, tmp_path: Path
) -> None:
    gateway.media.serve("/reference.jpg", jpeg(768, 1024, scene=4), "image/jpeg")
    with _client(evolink_media, gateway, tmp_path) as mcp:
        hello = mcp.initialize()
        assert hello["serverInfo"]["name"] == "evolink-media", hello
        tools = {tool["name"] for tool in mcp.list_tools()}
        assert {"generate_video", "check_task", "list_models", "estimate_cost"} <= tools, tools
        # The catalogue tools answer from the client's own list (no API call): they name the Kling video models.
        listed = _clean(mcp.call_tool("list_models", {"category": "video"}))
        info = _clean(mcp.call_tool("estimate_cost", {"model": "kling-o3-text-to-video"}))
        assert "kling-v3-text-to-video" in listed and "Model: kling-o3-text-to-video" in info
        assert _fetches(tmp_path) == []
        submitted = [(_submit(mcp, gateway, _with_media(arguments, gateway)), kind, seconds)
                     for arguments, kind, seconds in CASES]  # fmt: skip
        for task_id, kind, seconds in submitted:
            _check_results(_poll(mcp, task_id), gateway, task_id, seconds)
            upstream = gateway.fake.video_task(task_id)
            assert upstream is not None and upstream.kind == kind and gateway.fake.video_create_count(task_id) == 1
        reference = gateway.fake.video_task(submitted[2][0])
        assert reference is not None and len(reference.body["image_list"]) == 1  # image_urls reached Kling
    sent = _fetches(tmp_path)
    assert {fetch["url"].split("/v1/")[0] for fetch in sent} == {gateway.base}  # only ever Reelgate, on loopback
    posts = [json.loads(fetch["body"]) for fetch in sent if fetch["method"] == "POST"]
    assert posts[0]["generate_audio"] is True  # a field of the client's that Reelgate's Kling models tolerate
    assert [post["model"] for post in posts] == [arguments["model"] for arguments, _, _ in CASES]
    assert any(seen.path == "/reference.jpg" for seen in gateway.media.seen)  # the image_urls reference was fetched


def test_evolink_media_client_renders_refusals_and_failures(
    evolink_media: tuple[str, Path], gateway: Gateway, tmp_path: Path
) -> None:
    gateway.fake.fail_next_video()
    with _client(evolink_media, gateway, tmp_path) as mcp:
        mcp.initialize()
        # A value the client offers but the model's document does not: Reelgate's 400, rendered by the client.
        refused = mcp.call_tool(
            "generate_video", {"model": "kling-v3-text-to-video", "prompt": "x", "aspect_ratio": "4:3"}
        )
        assert refused.is_error and "[400]" in refused.text and "aspect_ratio" in refused.text, refused.text
        # Kling refuses the content: the client renders the failed task with Reelgate's error code and message.
        task_id = _submit(mcp, gateway, {"model": "kling-v3-text-to-video", "prompt": "a storm", "duration": 3})
        text = _poll(mcp, task_id)
    task = gateway.task(task_id)
    assert task["status"] == "failed" and "Status: failed" in text, text
    assert f"Error code: {task['error']['code']}" in text and f"Message: {task['error']['message']}" in text, text
