"""Operator commands through the real entry point: the cross-tenant task look-up, and refusals as one line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from client.live import REELGATE, LiveServer, free_port
from dbs import PG_BASE, pg_unreachable

Run = Callable[..., subprocess.CompletedProcess[str]]


def _last_line(stderr: str) -> str:
    """A refusal is one line, after the line naming the database."""
    lines = stderr.splitlines()
    assert lines[0].startswith("database: ") and len(lines) == 2, stderr
    return lines[-1]


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
    assert _last_line(missing.stderr) == "error: no task 'task-unified-0000000000-nothere' in any account"


def test_operator_refusals_keep_their_lines_and_exit_codes(server: LiveServer) -> None:
    no_account = server.cli("credits", "grant", "--account", "ghost", "5")
    assert (no_account.returncode, _last_line(no_account.stderr)) == (1, "error: no account named 'ghost'")
    no_key = server.cli("keys", "revoke", "rg_nothing")
    assert (no_key.returncode, _last_line(no_key.stderr)) == (1, "error: no active key with prefix 'rg_nothing'")
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


def _run(server: LiveServer, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REELGATE, *args], env={**server.env, "COLUMNS": "300", **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_every_operator_command_says_which_database_it_used(server: LiveServer, tmp_path: Path) -> None:
    """Run from another directory, the default database is another file: the command says so, on stderr, without
    credentials, so a key printed for the wrong database is noticed at once."""
    data_dir = Path(server.env["REELGATE_DATA_DIR"]).resolve()
    created = _run(server, "keys", "create", "--account", "db-line")
    assert created.returncode == 0 and created.stderr.splitlines()[0] == f"database: SQLite file {data_dir}/reelgate.db"
    elsewhere = _run(server, "keys", "list", cwd=tmp_path, REELGATE_DATA_DIR="", REELGATE_DATABASE_URL="")
    assert elsewhere.stderr.splitlines()[0] == f"database: SQLite file {tmp_path.resolve()}/reelgate-data/reelgate.db"
    pg = _run(server, "keys", "list", REELGATE_DATABASE_URL="postgresql://user:hunter2@127.0.0.1:1/db?password=x")
    assert pg.stderr.splitlines()[0] == "database: postgresql://127.0.0.1:1/db" and "hunter2" not in pg.stderr


def test_migrate_says_what_it_applied(server: LiveServer, tmp_path: Path) -> None:
    fresh = {"REELGATE_DATA_DIR": str(tmp_path / "data"), "REELGATE_DATABASE_URL": ""}
    database = f"SQLite file {(tmp_path / 'data').resolve()}/reelgate.db"
    first = _run(server, "migrate", **fresh)
    assert (
        first.returncode == 0 and first.stdout.startswith("applied ") and f"to {database}: 0001, 0002" in first.stdout
    )
    again = _run(server, "migrate", **fresh)
    assert again.returncode == 0 and again.stdout.startswith(f"nothing to apply: {database} is at the latest schema")


def test_a_database_that_cannot_be_opened_is_one_line(server: LiveServer, tmp_path: Path) -> None:
    """No traceback: the database (without credentials) and the reason, on one line after the database line, and
    exit 5; a PostgreSQL server that refuses, one that does not know the role, a data directory under a file."""
    port = free_port()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    # (the database as the error names it, the reason): the environment of the command
    cases = {
        (f"postgresql://127.0.0.1:{port}/db", "Connection refused"): {
            "REELGATE_DATABASE_URL": f"postgresql://app:hunter2@127.0.0.1:{port}/db?sslmode=disable"
        },
        (f"SQLite file {blocker}/data/reelgate.db", f"Not a directory: {blocker}/data"): {
            "REELGATE_DATABASE_URL": "", "REELGATE_DATA_DIR": str(blocker / "data")
        },
    }  # fmt: skip
    if pg_unreachable() is None:  # the role is refused before any database is opened
        pg = PG_BASE.split("://", 1)[1].rsplit("@", 1)[-1]
        cases[(f"postgresql://{pg.split('?')[0]}", 'role "reelgate_no_such_role" does not exist')] = {
            "REELGATE_DATABASE_URL": f"postgresql://reelgate_no_such_role:hunter2@{pg}"
        }
    with ThreadPoolExecutor(len(cases)) as pool:
        runs = {case: pool.submit(_run, server, "keys", "create", "--account", "x", **env)
                for case, env in cases.items()}  # fmt: skip
    for (database, reason), run in runs.items():
        done = run.result()
        assert (done.returncode, done.stdout) == (5, ""), done.stderr
        assert _last_line(done.stderr) == f"error: cannot open the database ({database}): {reason}"
        assert "hunter2" not in done.stderr and "Traceback" not in done.stderr
