"""``reelgate file upload | list | delete | quota`` as a real process against a real ``reelgate serve``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from client.live import REELGATE, LiveServer, create_keys, free_port, jpeg

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def run(server: LiveServer) -> Run:
    """``reelgate ARGS`` as a user's shell runs it, with REELGATE_API_KEY (unless None) and REELGATE_BASE_URL set."""
    key = create_keys(server.env, {"files-cli": 0})["files-cli"]

    def run(
        *args: str, api_key: str | None = key, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        user_env = {k: v for k, v in server.env.items() if not k.startswith("REELGATE_")}
        user_env.update({"REELGATE_BASE_URL": server.base_url, "COLUMNS": "250", **(env or {})})
        if api_key is not None:
            user_env["REELGATE_API_KEY"] = api_key
        return subprocess.run([REELGATE, *args], env=user_env, capture_output=True, text=True, timeout=60, check=False)

    return run


def _together(*calls: Callable[[], subprocess.CompletedProcess[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands at once: each is mostly interpreter start-up, which parallelises well."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def _short_utc(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%m-%d %H:%M")


def test_upload_prints_the_url_then_list_quota_and_delete(run: Run, tmp_path: Path) -> None:
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(jpeg(401))
    uploaded = run("file", "upload", str(photo))
    assert uploaded.returncode == 0, uploaded.stderr
    url = uploaded.stdout.strip()  # the URL alone, for URL=$(reelgate file upload ...)
    assert "/files/" in url and "\n" not in url and "image/jpeg" in uploaded.stderr
    assert httpx.get(url).content == photo.read_bytes()

    as_json = run("file", "upload", str(photo), "--json", "--upload-path", "cli", "--file-name", "me.jpg")
    data = json.loads(as_json.stdout)
    assert (data["upload_path"], data["file_name"], data["mime_type"]) == ("cli", "me.jpg", "image/jpeg")

    listed, narrow, root_list, quota, root_quota = _together(
        lambda: run("file", "list"),
        lambda: run("file", "list", env={"COLUMNS": "80"}),
        lambda: run("--json", "file", "list"),
        lambda: run("file", "quota"),
        lambda: run("--json", "file", "quota"),
    )
    assert listed.returncode == 0 and data["file_id"] in listed.stdout and "2 files" in listed.stderr
    assert root_list.returncode == 0, root_list.stderr
    files = json.loads(root_list.stdout)["files"]  # reelgate --json file list: the server's own list
    assert [f["file_id"] for f in files][0] == data["file_id"] and len(files) == 2
    assert json.loads(root_quota.stdout)["used_files"] == 2
    assert quota.returncode == 0 and quota.stdout.split()[:2] == ["used", "2"]

    # 80 columns: nothing cut, no line wider, each id and its expiry whole on one line; URLs fold
    assert narrow.returncode == 0 and "…" not in narrow.stdout, narrow.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80, narrow.stdout
    for f in files:
        expiry = _short_utc(f["expires_at"])
        assert any(f["file_id"] in line and expiry in line for line in narrow.stdout.splitlines()), narrow.stdout

    deleted = run("file", "delete", data["file_id"])
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted {data['file_id']}"
    assert httpx.get(data["file_url"]).status_code == 404


def test_refusals_are_one_line_and_an_exit_code(run: Run, tmp_path: Path) -> None:
    text = tmp_path / "fake.png"
    text.write_text("I am not a picture\n" * 5)
    nowhere = f"http://127.0.0.1:{free_port()}"
    refused, missing, unknown, no_key, offline = _together(
        lambda: run("file", "upload", str(text)),
        lambda: run("file", "upload", str(tmp_path / "nope.png")),
        lambda: run("file", "delete", "file_000000000000000000000000"),
        lambda: run("file", "quota", api_key=None),
        lambda: run("file", "list", env={"REELGATE_BASE_URL": nowhere}),
    )
    assert refused.returncode == 1 and "got text" in refused.stderr and refused.stdout == ""
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: ") and "not found" in unknown.stderr
    assert no_key.returncode == 2 and "no API key" in no_key.stderr
    assert offline.returncode == 5 and f"is the server running at {nowhere}? see --base-url" in offline.stderr
