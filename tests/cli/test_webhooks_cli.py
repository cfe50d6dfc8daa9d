"""``reelgate webhook retrieve-secret | rotate-secret`` (and their short names ``secret`` and ``rotate``) and
``reelgate task resend-callback`` through the real entry point, as a user's shell runs them, against a real server
on loopback with a real callback receiver: what goes to stdout for scripts, what to stderr, and the exit codes."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

import client.live
from client.webhook_server import HookServer, dead_delivery, webhook_session_server
from fakes.receiver import Receiver
from reelgate_client import webhook_secret_id

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def hooks_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> HookServer:
    return webhook_session_server(request.config, tmp_path_factory)


@pytest.fixture
def reelgate(hooks_server: HookServer) -> Run:
    """``reelgate`` with REELGATE_API_KEY and REELGATE_BASE_URL set, as a user's shell would have them."""

    def run(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
        user_env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
        user_env.update({"REELGATE_API_KEY": hooks_server.keys["hooks-cli"], "REELGATE_BASE_URL": hooks_server.base_url,
                         "COLUMNS": "100", **(env or {})})  # fmt: skip
        return subprocess.run([client.live.REELGATE, *args], env=user_env, input=stdin, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip

    return run


def _together(reelgate: Run, *calls: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands at once: each is mostly interpreter start-up, which parallelises well."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda args: reelgate(*args), calls))


def test_the_secret_is_shown_by_id_and_rotated_with_the_new_one_alone_on_stdout(reelgate: Run) -> None:
    refused, rotated = _together(reelgate, ["webhook", "rotate"], ["webhook", "rotate-secret", "--yes"])
    assert rotated.returncode == 0, rotated.stderr
    secret = rotated.stdout.strip()
    assert secret.startswith("whsec_") and rotated.stdout == secret + "\n"  # SECRET=$(reelgate webhook rotate ...)
    assert "shown once" in rotated.stderr and webhook_secret_id(secret) in rotated.stderr
    assert (
        refused.returncode == 1 and "Aborted" in refused.stderr and "whsec_" not in refused.stdout
    )  # no --yes, no tty

    shown, as_json, root_json = _together(
        reelgate, ["webhook", "retrieve-secret"], ["webhook", "secret", "--json"], ["--json", "webhook", "secret"]
    )
    assert shown.returncode == 0, shown.stderr
    assert webhook_secret_id(secret) in shown.stdout and "UTC" in shown.stdout and "whsec_" not in shown.stdout
    for done in (as_json, root_json):
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["id"] == webhook_secret_id(secret) and "secret" not in json.loads(done.stdout)


def test_a_dead_callback_is_resent_from_the_command_line(reelgate: Run, hooks_server: HookServer) -> None:
    with Receiver(default=500) as hook:
        task_id = dead_delivery(hooks_server, hooks_server.keys["hooks-cli"], hook.url())
        hook.default = 200
        resent = reelgate("task", "resend-callback", task_id)
        assert resent.returncode == 0, resent.stderr
        assert resent.stdout.startswith(f"resent the callback of {task_id} to {hook.url()}")
        assert "4 attempts before, resend 1" in resent.stdout
        got = hook.wait_for(5)
    assert len({r.headers["webhook-id"] for r in got}) == 1

    nowhere = f"http://127.0.0.1:{client.live.free_port()}"
    again, unknown, keyless, keyless_secret, offline, rotated = _together(
        reelgate,
        ["task", "resend-callback", task_id, "--json"],
        ["task", "resend-callback", "task-unified-1700000000-00000000"],
        ["task", "resend-callback", task_id, "--api-key", ""],
        ["webhook", "secret", "--api-key", ""],
        ["webhook", "secret", "--base-url", nowhere],
        ["webhook", "rotate", "--yes", "--json"],
    )
    assert again.returncode == 1 and again.stdout == "" and "callback_already_delivered" in again.stderr
    assert unknown.returncode == 1 and "not found (task_not_found" in unknown.stderr
    assert keyless.returncode == 2 and "no API key" in keyless.stderr
    assert keyless_secret.returncode == 2 and "reelgate webhooks" in keyless_secret.stderr  # the operators' command
    assert offline.returncode == 5 and f"is the server running at {nowhere}" in offline.stderr
    body = json.loads(rotated.stdout)
    assert body["secret"].startswith("whsec_") and body["id"] == webhook_secret_id(body["secret"])
