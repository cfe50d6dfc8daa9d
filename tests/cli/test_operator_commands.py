"""Operator commands through the real entry point: the cross-tenant task look-up, and refusals as one line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from client.live import LiveServer

Run = Callable[..., subprocess.CompletedProcess[str]]


def test_tasks_show_finds_any_accounts_task(reelgate: Run, server: LiveServer, pictures: tuple[Path, Path]) -> None:
    front, side = pictures
    args = ["element", "create", "--name", "Ops", "--description", "an operator test", "--front", str(front)]
    done = reelgate(*args, "--refer", str(side), "--wait", "--json")
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)

    shown = server.cli("tasks", "show", task["id"], "--json")  # the operator's shell: the database, no API key
    assert shown.returncode == 0, shown.stderr
    found = json.loads(shown.stdout)
    assert (found["id"], found["account"], found["status"], found["model"], found["provider"]) == (
        task["id"],
        "cli",
        "completed",
        "kling-custom-element",
        "local",
    )
    assert found["credits_reserved"] == found["credits_charged"] == task["usage"]["credits_charged"]
    assert found["result"]["element_id"] == task["result_data"]["element_id"] and found["error_code"] is None
    assert found["finished_at"] >= found["created_at"] > 0

    panel = server.cli("tasks", "show", task["id"])
    assert panel.returncode == 0, panel.stderr
    for expected in (task["id"], "cli (id ", "provider", "local", "finished", "completed (100%)"):
        assert expected in panel.stdout

    missing = server.cli("tasks", "show", "task-unified-0000000000-nothere")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "error: no task 'task-unified-0000000000-nothere' in any account\n"


def test_operator_refusals_keep_their_lines_and_exit_codes(server: LiveServer) -> None:
    no_account = server.cli("credits", "grant", "--account", "ghost", "5")
    assert (no_account.returncode, no_account.stderr) == (1, "error: no account named 'ghost'\n")
    no_key = server.cli("keys", "revoke", "rg_nothing")
    assert (no_key.returncode, no_key.stderr) == (1, "error: no active key with prefix 'rg_nothing'\n")
    bad_amount = server.cli("credits", "grant", "--account", "cli", "lots")
    assert (bad_amount.returncode, bad_amount.stderr) == (2, "error: credits must be a positive number, got 'lots'\n")


def test_an_operators_round_trip(server: LiveServer) -> None:
    created = server.cli("keys", "create", "--account", "ops-round-trip", "--credits", "2.5", "--name", "ops")
    assert created.returncode == 0 and "ops-round-trip" in created.stderr
    key = created.stdout.strip()
    assert key.startswith("rg_") and "\n" not in key

    granted = server.cli("credits", "grant", "--account", "ops-round-trip", "1.5")
    assert granted.stdout == "granted 1.5 credits to ops-round-trip\n"
    assert "available 4, reserved 0, captured 0" in server.cli("credits", "show", "--account", "ops-round-trip").stdout
    limits = server.cli("accounts", "limits", "--account", "ops-round-trip", "--rate-per-minute", "30")
    assert limits.stdout == "limits for ops-round-trip: 30 requests/min, default tasks in flight\n"

    secret = server.cli("webhooks", "secret", "--account", "ops-round-trip").stdout.strip()
    rotated = server.cli("webhooks", "rotate", "--account", "ops-round-trip").stdout.strip()
    assert secret.startswith("whsec_") and rotated.startswith("whsec_") and rotated != secret
    assert server.cli("webhooks", "secret", "--account", "ops-round-trip").stdout.strip() == rotated

    assert key[:10] in server.cli("keys", "list", "--account", "ops-round-trip").stdout
    assert server.cli("keys", "revoke", key).stdout == f"revoked {key[:10]}\n"
