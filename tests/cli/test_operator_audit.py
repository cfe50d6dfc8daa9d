"""The operator commands that change something (``keys create|revoke``, ``credits grant``, ``webhooks rotate``,
``accounts limits``, ``callbacks resend``), run in-process through the CLI entry point on a SQLite file, each write
one entry to the console's audit log as done by ``cli``, through the console's own audited use cases; a refused
command writes none."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.test_console_actions import failed_with_dead_callback
from reelgate.cli import app
from reelgate.console_ops import Admins
from reelgate.store.sql import Store


@pytest.fixture
def database(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    db = tmp_path / "reelgate.db"
    db.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{db}"
    monkeypatch.setenv("REELGATE_DATABASE_URL", url)
    monkeypatch.setenv("REELGATE_DATA_DIR", str(tmp_path))
    return url


async def audit(url: str) -> list[tuple[str, str, str, str]]:
    store = await Store.open(url, pool_size=1)
    try:
        return [(e.actor, e.action, e.target, e.detail) for e in reversed(await Admins(store).audit_log())]
    finally:
        await store.close()


async def dead_callback_task(url: str) -> str:
    store = await Store.open(url, pool_size=1)
    try:
        account_id = await store.accounts.account_id("acme")
        assert account_id is not None
        return await failed_with_dead_callback(store, account_id)
    finally:
        await store.close()


def test_every_changing_operator_command_is_audited_as_cli(database: str) -> None:
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.stdout

    key = run("keys", "create", "--account", "acme", "--credits", "50", "--name", "ci").strip().splitlines()[-1]
    run("credits", "grant", "--account", "acme", "12.5")
    run("webhooks", "rotate", "--account", "acme")
    run("accounts", "limits", "--account", "acme", "--rate-per-minute", "30")
    run("keys", "revoke", key)
    task_id = asyncio.run(dead_callback_task(database))
    run("callbacks", "resend", task_id)
    refused_before = asyncio.run(audit(database))
    run("credits", "grant", "--account", "nobody", "1", code=1)
    run("keys", "revoke", "rg_nosuchkey", code=1)
    entries = asyncio.run(audit(database))
    assert entries == refused_before  # a refused command did nothing, and says so nowhere

    assert [(actor, action, target) for actor, action, target, _ in entries] == [
        ("cli", "create_key", "account:acme"),
        ("cli", "grant_credits", "account:acme"),
        ("cli", "rotate_webhook_secret", "account:acme"),
        ("cli", "set_limits", "account:acme"),
        ("cli", "revoke_key", "account:acme"),
        ("cli", "resend_callback", f"task:{task_id}"),
    ]
    details = [detail for *_, detail in entries]
    assert "new account" in details[0] and "50 credits granted" in details[0] and "ci" in details[0]
    assert details[1] == "12.5 credits" and details[3].startswith("30 requests/min")
    assert key not in " ".join(details)  # a key's prefix only, never the key
