"""serve's worker processes (the default layout): tasks run in processes of their own, a killed one is restarted and
its tasks are taken over, stopping serve stops them all, and a worker process never outlives its serve."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fakes import mediagen
from fakes.media_server import MediaServer
from procs import Proc, create_key, free_port, free_ports, reelgate_env, serve
from settled import ledger_is_exact, wait_terminal

FRONT = mediagen.jpeg(768, 1024, scene=1)
SIDE = mediagen.jpeg(768, 1024, scene=2)
CHILD = "reelgate.cli.background"


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        server.serve("/front.jpg", FRONT, "image/jpeg")

        def slow(handler: object) -> None:
            if not handler.wait(0.5):  # type: ignore[attr-defined]
                handler.send_bytes(200, SIDE, "image/jpeg")  # type: ignore[attr-defined]

        server.route("/side.jpg", slow)
        yield server


def _body(media: MediaServer) -> dict[str, object]:
    return {"model": "kling-custom-element", "model_params": {
        "element_name": "procs", "element_description": "made in a worker process", "reference_type": "image_refer",
        "element_image_list": {"frontal_image": media.url("/front.jpg"),
                               "refer_images": [{"image_url": media.url("/side.jpg")}]}}}  # fmt: skip


def _children(pid: int) -> list[int]:
    """The worker processes of a serve or worker process (its children running the worker entry point)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and CHILD in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def _wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(what)


def _submit(base: str, key: str, media: MediaServer, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {key}"}
    return [httpx.post(f"{base}/v1/videos/generations", json=_body(media), headers=headers).json()["id"]
            for _ in range(count)]  # fmt: skip


def _completed(page: str) -> float:
    """Completed tasks counted on a /metrics page, over every model and code."""
    found = re.findall(r'^reelgate_tasks_finished_total\{[^}]*status="completed"[^}]*\} (\S+)$', page, re.M)
    return sum(float(n) for n in found)


def test_a_killed_worker_process_is_restarted_and_its_tasks_taken_over(tmp_path: Path, db_url: str,
                                                                       media: MediaServer) -> None:  # fmt: skip
    env = reelgate_env(tmp_path / "data", db_url, REELGATE_WORKER_PROCESSES="2", REELGATE_LEASE_SECONDS="1.5")
    key = create_key(env, credits=30)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(env, port, tmp_path / "serve.log")
    try:
        _wait_for(lambda: len(_children(server.popen.pid)) == 2, 20, "serve did not start 2 worker processes")
        first = _children(server.popen.pid)
        ids = _submit(base, key, media, 10)
        time.sleep(0.3)  # tasks are mid-fetch in both processes, holding leases
        os.kill(first[0], signal.SIGKILL)
        _wait_for(lambda: len(_children(server.popen.pid)) == 2 and first[0] not in _children(server.popen.pid), 20,
                  "the killed worker process was not replaced")  # fmt: skip
        tasks = wait_terminal(base, key, ids)
    finally:
        server.kill()
    assert [t["status"] for t in tasks] == ["completed"] * len(ids), [t.get("error") for t in tasks]
    assert "worker process died; restarting it" in (tmp_path / "serve.log").read_text()
    asyncio.run(ledger_is_exact(db_url, ids))


def _wake_dir(pid: int) -> Path:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return Path(next(v for v in environ if v.startswith(b"REELGATE_WAKE_DIR=")).split(b"=", 1)[1].decode())


def test_serve_stops_its_worker_processes_and_metrics_add_them_up(tmp_path: Path, media: MediaServer) -> None:
    # A temporary directory too long for a socket's path: the wake directory is made in /tmp instead.
    long_tmp = tmp_path / ("t" * 60)
    long_tmp.mkdir()
    env = reelgate_env(tmp_path / "data", f"sqlite:///{tmp_path / 'r.db'}", REELGATE_WORKER_PROCESSES="2",
                       TMPDIR=str(long_tmp))  # fmt: skip
    key = create_key(env, credits=5)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(env, port, tmp_path / "serve.log")
    try:
        _wait_for(lambda: len(_children(server.popen.pid)) == 2, 20, "serve did not start 2 worker processes")
        children = _children(server.popen.pid)
        wake_dir = _wake_dir(children[0])
        _wait_for(lambda: len(list(wake_dir.glob("*.sock"))) == 2, 20, "each worker process listens for wake-ups")
        assert wait_terminal(base, key, _submit(base, key, media, 3))[0]["status"] == "completed"
        assert _completed(httpx.get(f"{base}/metrics").text) == 3  # counted in the worker processes, read here
        os.kill(server.popen.pid, signal.SIGTERM)
        assert server.popen.wait(20) == -signal.SIGTERM  # stopped as asked, after its worker processes
    finally:
        server.kill()
    assert not wake_dir.exists(), "the wake directory was left behind"
    assert "cannot listen for wake-ups" not in (tmp_path / "serve.log").read_text()
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "a worker process outlived serve"


def test_worker_processes_stop_when_serve_is_killed(tmp_path: Path) -> None:
    env = reelgate_env(tmp_path / "data", f"sqlite:///{tmp_path / 'r.db'}", REELGATE_WORKER_PROCESSES="2")
    port = free_port()
    server = serve(env, port, tmp_path / "serve.log")
    try:
        _wait_for(lambda: len(_children(server.popen.pid)) == 2, 20, "serve did not start 2 worker processes")
        children = _children(server.popen.pid)
        os.kill(server.popen.pid, signal.SIGKILL)  # serve alone, not its process group: nobody stops the children
        server.popen.wait(10)
        _wait_for(lambda: not [pid for pid in children if _alive(pid)], 15, "worker processes outlived a killed serve")
    finally:
        server.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; only its (dead) parent could have reaped it


def test_worker_command_runs_several_processes_with_summed_metrics(tmp_path: Path, media: MediaServer) -> None:
    env = reelgate_env(tmp_path / "data", f"sqlite:///{tmp_path / 'r.db'}")
    key = create_key(env, credits=5)
    api_port, metrics_port = free_ports(2)
    base = f"http://127.0.0.1:{api_port}"
    api = serve(env, api_port, tmp_path / "serve.log", "--no-tasks")
    workers = Proc(env, "worker", "--processes", "2", "--metrics-port", str(metrics_port), log=tmp_path / "w.log")
    try:
        _wait_for(lambda: len(_children(workers.popen.pid)) == 2, 20, "worker did not start 2 processes")
        children = _children(workers.popen.pid)
        tasks = wait_terminal(base, key, _submit(base, key, media, 4))
        assert [t["status"] for t in tasks] == ["completed"] * 4
        assert _completed(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text) == 4
        os.kill(workers.popen.pid, signal.SIGTERM)
        assert workers.popen.wait(20) == 0
        assert not [pid for pid in children if _alive(pid)]
    finally:
        workers.kill()
        api.kill()
