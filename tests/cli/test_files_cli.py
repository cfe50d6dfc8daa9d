"""``reelgate file upload | list | delete | quota`` as a real process against a real ``reelgate serve``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from client.live import REELGATE, LiveServer, create_keys, jpeg

Run = Callable[..., subprocess.CompletedProcess[str]]


def _command() -> list[str]:
    """``reelgate file`` once cli/__init__ registers the group; until then the same Typer app, run on its own."""
    from reelgate.cli import app

    if any(group.name == "file" for group in app.registered_groups):
        return [REELGATE, "file"]
    return [sys.executable, "-c", "from reelgate.cli.files_user import app; app(prog_name='reelgate file')"]


@pytest.fixture(scope="module")
def run(server: LiveServer) -> Run:
    key = create_keys(server.env, {"files-cli": 0})["files-cli"]
    base = _command()

    def run(*args: str, api_key: str | None = key) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in server.env.items() if not k.startswith("REELGATE_")}
        env.update({"REELGATE_BASE_URL": server.base_url, "COLUMNS": "250"})
        if api_key is not None:
            env["REELGATE_API_KEY"] = api_key
        return subprocess.run([*base, *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    return run


def test_upload_prints_the_url_then_list_quota_and_delete(run: Run, tmp_path: Path) -> None:
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(jpeg(401))
    uploaded = run("upload", str(photo))
    assert uploaded.returncode == 0, uploaded.stderr
    url = uploaded.stdout.strip()  # the URL alone, for URL=$(reelgate file upload ...)
    assert "/files/" in url and "\n" not in url and "image/jpeg" in uploaded.stderr
    assert httpx.get(url).content == photo.read_bytes()

    as_json = run("upload", str(photo), "--json", "--upload-path", "cli", "--file-name", "me.jpg")
    data = json.loads(as_json.stdout)
    assert (data["upload_path"], data["file_name"], data["mime_type"]) == ("cli", "me.jpg", "image/jpeg")

    listed = run("list")
    assert listed.returncode == 0 and data["file_id"] in listed.stdout and "2 files" in listed.stderr
    assert json.loads(run("quota", "--json").stdout)["used_files"] == 2

    deleted = run("delete", data["file_id"])
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted {data['file_id']}"
    assert httpx.get(data["file_url"]).status_code == 404


def test_refusals_are_one_line_and_an_exit_code(run: Run, tmp_path: Path) -> None:
    text = tmp_path / "fake.png"
    text.write_text("I am not a picture\n" * 5)
    refused = run("upload", str(text))
    assert refused.returncode == 1 and "got text" in refused.stderr and refused.stdout == ""
    missing = run("upload", str(tmp_path / "nope.png"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    unknown = run("delete", "file_000000000000000000000000")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: ") and "not found" in unknown.stderr
    no_key = run("quota", api_key=None)
    assert no_key.returncode == 2 and "no API key" in no_key.stderr
