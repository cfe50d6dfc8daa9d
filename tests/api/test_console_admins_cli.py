"""``reelgate admins create | list | disable`` run in-process on a SQLite file: the password from stdin (never an
argument), refusals with their exit codes, and each change in the console's audit log as done by ``cli``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelgate.cli import app
from reelgate.console_ops import Admins
from reelgate.store.sql import Store


@pytest.fixture
def database(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    db = tmp_path / "reelgate.db"
    db.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{db}"
    for name in ("REELGATE_DATABASE_URL", "REELGATE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REELGATE_DATABASE_URL", url)
    monkeypatch.setenv("REELGATE_DATA_DIR", str(tmp_path))
    return url


async def audit(url: str) -> list[tuple[str, str, str]]:
    store = await Store.open(url, pool_size=1)
    try:
        return [(e.actor, e.action, e.target) for e in await Admins(store).audit_log()]
    finally:
        await store.close()


def test_create_list_and_disable_operators(database: str) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["admins", "create", "ops", "--password-stdin"], input="a long enough password\n")
    assert made.exit_code == 0 and "created operator 'ops'" in made.stdout, made.output
    again = runner.invoke(app, ["admins", "create", "ops", "--password-stdin"], input="another long password\n")
    assert again.exit_code == 1 and "an operator named 'ops' already exists" in again.output
    short = runner.invoke(app, ["admins", "create", "dev", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "must be 12 to 1024 characters long, got 5" in short.output
    bad_name = runner.invoke(app, ["admins", "create", "Ops Team", "--password-stdin"], input="a long password ok\n")
    assert bad_name.exit_code == 2 and "username 'Ops Team' must be" in bad_name.output
    listed = runner.invoke(app, ["admins", "list", "--json"])
    rows = json.loads(listed.stdout)
    assert [(r["username"], r["disabled"], r["last_sign_in"]) for r in rows] == [("ops", False, None)]
    assert runner.invoke(app, ["admins", "disable", "ops"]).exit_code == 0
    assert runner.invoke(app, ["admins", "disable", "ops"]).exit_code == 0  # again: nothing changes
    unknown = runner.invoke(app, ["admins", "disable", "ghost"])
    assert unknown.exit_code == 1 and "no operator named 'ghost'" in unknown.output
    table = runner.invoke(app, ["admins", "list"], env={"COLUMNS": "100"})
    assert "ops" in table.stdout and "disabled" in table.stdout
    assert asyncio.run(audit(database)) == [("cli", "admin_disable", "admin:ops"), ("cli", "admin_create", "admin:ops")]
