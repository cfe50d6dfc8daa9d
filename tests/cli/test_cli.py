"""The user CLI through its real entry point: output shapes for people and scripts, and the exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from client.live import REELGATE, LiveServer, free_port, jpeg, slow_images

Run = Callable[..., subprocess.CompletedProcess[str]]
Call = tuple[list[str], dict[str, str]]


def _together(reelgate: Run, *calls: Call) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands at once: each is mostly interpreter start-up, which parallelises well."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: reelgate(*call[0], env=call[1]), calls))


def _create_args(front: Path | str, side: Path | str, *extra: str, name: str = "Rover") -> list[str]:
    return [
        "element",
        "create",
        "--name",
        name,
        "--description",
        "a CLI test",
        "--front",
        str(front),
        "--refer",
        str(side),
        *extra,
    ]


def test_element_create_wait_prints_the_id_last_and_a_progress_bar(reelgate: Run, pictures: tuple[Path, Path]) -> None:
    done = reelgate(*_create_args(*pictures, "--tag", "character", "--wait"))
    assert done.returncode == 0, done.stderr
    element_id = done.stdout.strip().splitlines()[-1]
    assert element_id.isdigit() and done.stdout.strip() == element_id  # stdout is just the id, for $(...)
    assert "100%" in done.stderr and "completed" in done.stderr and "━" in done.stderr

    shown, listed = _together(
        reelgate, (["element", "get", element_id, "--json"], {}), (["element", "list", "--json", "--all"], {})
    )
    element, page = json.loads(shown.stdout), json.loads(listed.stdout)
    assert (element["element_id"], element["tag_list"]) == (element_id, [{"tag_id": "o_102"}])
    assert element_id in [e["element_id"] for e in page["data"]] and page["has_more"] is False

    assert reelgate("element", "delete", element_id).stdout.strip() == f"deleted element {element_id}"
    gone = reelgate("element", "get", element_id)
    assert gone.returncode == 1 and gone.stdout == ""
    assert gone.stderr == f"error: element {element_id} not found (element_not_found, param element_id)\n"


def test_task_commands_with_json(reelgate: Run, pictures: tuple[Path, Path]) -> None:
    submitted = reelgate(*_create_args(*pictures, "--json"))
    task = json.loads(submitted.stdout)
    assert submitted.returncode == 0 and task["status"] in ("pending", "processing") and task["usage"]

    waited = json.loads(reelgate("task", "wait", task["id"], "--json").stdout)
    assert waited["status"] == "completed" and waited["result_data"]["element_id"].isdigit()
    got, listed, conflict = _together(
        reelgate,
        (["task", "get", task["id"], "--json"], {}),
        (["task", "list", "--json", "--limit", "1", "--status", "completed"], {}),
        (["task", "cancel", task["id"]], {}),
    )
    assert json.loads(got.stdout) == waited
    page = json.loads(listed.stdout)
    assert [t["id"] for t in page["data"]] == [task["id"]] and page["last_id"] == task["id"]
    assert conflict.returncode == 1 and "(task_not_cancellable, param task_id)" in conflict.stderr


def test_an_invalid_field_is_one_clear_line(reelgate: Run, pictures: tuple[Path, Path]) -> None:
    done = reelgate(*_create_args(*pictures, name="x" * 21))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "error: model_params.element_name must be 1-20 characters "
        "(invalid_parameter, param model_params.element_name)\n"
    )


def test_usage_quota_and_connection_exit_codes(
    reelgate: Run, keys: dict[str, str], pictures: tuple[Path, Path], tmp_path: Path
) -> None:
    no_key, missing, bad_option, broke, offline = _together(
        reelgate,
        (["task", "list"], {"REELGATE_API_KEY": ""}),
        (_create_args(tmp_path / "missing.jpg", pictures[1]), {}),
        (["task", "list", "--status", "finished"], {}),
        (_create_args(*pictures), {"REELGATE_API_KEY": keys["broke"]}),
        (["task", "list", "--base-url", f"http://127.0.0.1:{free_port()}"], {}),
    )
    assert no_key.returncode == 2 and "REELGATE_API_KEY" in no_key.stderr
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert bad_option.returncode == 2 and "--status" in bad_option.stderr
    assert broke.returncode == 1 and "(insufficient_credits)" in broke.stderr
    assert offline.returncode == 5 and offline.stderr.startswith("error: cannot reach http://127.0.0.1:")


def test_a_failed_task_exits_3(reelgate: Run, server: LiveServer, pictures: tuple[Path, Path]) -> None:
    done = reelgate(*_create_args(pictures[0], f"{server.base_url}/assets/{'0' * 64}.jpg", "--wait"))
    assert done.returncode == 3 and "(image_processing_error)" in done.stderr and done.stdout == ""


def test_a_wait_timeout_exits_4_and_json_still_shows_the_task(reelgate: Run, pictures: tuple[Path, Path]) -> None:
    with slow_images(jpeg(303)) as (_slow, url):
        done = reelgate(*_create_args(pictures[0], url, "--wait", "--timeout", "0.5", "--json"))
        assert done.returncode == 4 and "still" in done.stderr
        task = json.loads(done.stdout)
        assert task["status"] in ("pending", "processing")
        assert reelgate("task", "cancel", task["id"]).returncode == 0


def _demo_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}  # a machine with no setup
    env["TMPDIR"] = str(tmp)  # where the demo makes (and must remove) its data directory
    env["PYTHONFAULTHANDLER"] = "1"  # a crash shows every thread's stack in the failure
    return env


def _demo_dirs(tmp: Path) -> list[Path]:
    return [p for p in tmp.iterdir() if p.name.startswith("reelgate-demo-")]


def test_demo_runs_end_to_end_offline(tmp_path: Path) -> None:
    """Not in a terminal (stdin is not a TTY) the demo stops at once, and says its links went with the server."""
    done = subprocess.run([REELGATE, "demo"], env=_demo_env(tmp_path), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = re.search(r"element_id (\d+)", done.stdout)
    assert found and done.stdout.count(found.group(1)) >= 2  # the panel and the summary line
    assert "100%" in done.stderr and "server stopped" in done.stdout and "answered only while it ran" in done.stdout
    assert "needs an upstream Kling channel" in done.stdout and "video generated" not in done.stdout
    assert "Ctrl-C" not in done.stdout and _demo_dirs(tmp_path) == []


def test_demo_keeps_its_server_up_until_ctrl_c(tmp_path: Path) -> None:
    demo = subprocess.Popen([REELGATE, "demo", "--wait"], env=_demo_env(tmp_path), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    watchdog = threading.Timer(90, demo.kill)  # a demo that never comes up must not hang the suite
    watchdog.start()
    try:
        assert demo.stdout is not None
        shown = ""
        for line in demo.stdout:  # until the demo says it is up (or ends)
            shown += line
            if line.startswith("Press Ctrl-C to stop it."):
                break
        assert "Press Ctrl-C to stop it." in shown, shown
        links = dict(re.findall(r"^  (API reference|front picture|side picture) +(\S+)$", shown, re.MULTILINE))
        assert set(links) == {"API reference", "front picture", "side picture"}, shown
        base_url = links["API reference"].removesuffix("/docs")
        key = re.search(r"REELGATE_API_KEY=(\S+)", shown)
        assert key and re.search(rf"export REELGATE_BASE_URL={re.escape(base_url)} ", shown)
        for url in (links["front picture"], links["side picture"]):  # the links printed answer while it waits
            answer = httpx.get(url, timeout=10)
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
        elements = httpx.get(f"{base_url}/v1/elements", headers={"Authorization": f"Bearer {key.group(1)}"}, timeout=10)
        assert elements.status_code == 200 and len(elements.json()["data"]) == 1
        assert len(_demo_dirs(tmp_path)) == 1

        demo.send_signal(signal.SIGINT)
        rest, errors = demo.communicate(timeout=30)
    finally:
        watchdog.cancel()
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, errors[-8000:]
    assert "server stopped" in rest and "Traceback" not in errors and "Aborted" not in errors, errors[-8000:]
    assert _demo_dirs(tmp_path) == [], list(tmp_path.iterdir())  # the data directory went with it
    with pytest.raises(httpx.TransportError):  # the server went with it
        httpx.get(f"{base_url}/healthz", timeout=2)
