"""What every command shares, through the real entry point: ``--json`` before or after the command, the verbs named
after the client's methods (``retrieve``, with ``get`` as its short name), ``reelgate credits`` for API users beside
the operators' ``credits show``, ``model list``, and help screens that tell the truth."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from client.live import LiveServer
from reelgate.cli import app

Run = Callable[..., subprocess.CompletedProcess[str]]


def _together(*calls: Callable[[], subprocess.CompletedProcess[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands at once: each is mostly interpreter start-up."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_json_before_or_after_the_command_and_get_is_retrieve(
    reelgate: Run, server: LiveServer, pictures: tuple[Path, Path]
) -> None:
    front, side = pictures
    made = reelgate("--json", "element", "create", "--name", "Jay", "--description", "either place", "--front",
                    str(front), "--refer", str(side), "--wait")  # fmt: skip
    assert made.returncode == 0, made.stderr
    task = json.loads(made.stdout)  # --json before the command: the finished task as JSON
    task_id, element_id = task["id"], task["result_data"]["element_id"]

    before, after, retrieved, got, elements, element, element_get, operator = _together(
        lambda: reelgate("--json", "task", "get", task_id),
        lambda: reelgate("task", "get", task_id, "--json"),
        lambda: reelgate("--json", "task", "retrieve", task_id),
        lambda: reelgate("task", "get", task_id),
        lambda: reelgate("--json", "element", "list", "--limit", "1"),
        lambda: reelgate("element", "retrieve", element_id),
        lambda: reelgate("element", "get", element_id),
        lambda: server.cli("--json", "tasks", "show", task_id),
    )
    assert json.loads(before.stdout) == json.loads(after.stdout) == json.loads(retrieved.stdout) == task
    assert task_id in got.stdout and "task completed" in got.stdout  # without --json: the panel
    assert [e["element_id"] for e in json.loads(elements.stdout)["data"]] == [element_id]
    assert element.returncode == 0 and element.stdout == element_get.stdout and "element Jay" in element.stdout
    assert json.loads(operator.stdout)["id"] == task_id  # the operator's command honours it too


def test_credits_alone_is_the_api_users_balance(reelgate: Run, server: LiveServer) -> None:
    shown, as_json, root_json, no_key, operator = _together(
        lambda: reelgate("credits"),
        lambda: reelgate("credits", "--json"),
        lambda: reelgate("--json", "credits"),
        lambda: reelgate("credits", env={"REELGATE_API_KEY": ""}),
        lambda: server.cli("credits", "show", "--account", "cli"),
    )
    body = json.loads(as_json.stdout)
    assert json.loads(root_json.stdout) == body
    token, user = body["data"]["token"], body["data"]["user"]
    assert shown.returncode == 0 and shown.stderr == ""  # an API command: no database line
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["this", "key", f"{token['remaining_credits']:g}", "remaining,",
                                f"{token['used_credits']:g}", "used", "by", "its", "tasks"]  # fmt: skip
    assert lines[1].split() == ["account", f"{user['remaining_credits']:g}", "remaining,",
                                f"{user['used_credits']:g}", "used"]  # fmt: skip
    assert no_key.returncode == 2 and "reelgate credits show --account NAME" in no_key.stderr
    assert operator.returncode == 0 and operator.stdout.startswith("account cli (group default)\n")
    assert operator.stderr.startswith("database: ")


def test_model_list(reelgate: Run) -> None:
    table, as_json = _together(lambda: reelgate("model", "list", env={"COLUMNS": "80"}),
                               lambda: reelgate("model", "list", "--json"))  # fmt: skip
    models = {m["id"]: m for m in json.loads(as_json.stdout)["data"]}
    assert models["kling-custom-element"]["available"] is True
    row = next(line for line in table.stdout.splitlines() if line.startswith("kling-custom-element "))
    assert row.split() == ["kling-custom-element", "yes", f"{models['kling-custom-element']['price']:g}", "per", "call"]


def _commands(command: typer.core.TyperGroup, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in command.commands.items():
        if isinstance(sub, TyperGroup):
            yield from _commands(sub, (*path, name))
        else:
            yield (*path, name)


def test_help_screens_tell_the_truth() -> None:
    """Every help screen, in process (the same Typer app the entry point runs): a flag shows no ``<bool>`` (it takes
    no value), a repeatable option the type of one value, and defaults that are the ones used."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    runner = CliRunner()
    screens = {path: runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}) for path in _commands(root)}
    assert len(screens) > 30
    for path, shown in screens.items():
        assert shown.exit_code == 0, (path, shown.output)
        assert "<bool>" not in shown.output and "list[" not in shown.output, (path, shown.output)
    worker = screens[("worker",)].output
    assert "else 4" in worker and "default: 0" not in worker
    for group in ("keys", "credits", "webhooks", "accounts", "tasks"):  # where the operator's database is
        assert "REELGATE_DATA_DIR (default: ./reelgate-data" in " ".join(screens[(group,)].output.split()), group
    assert "--json" in screens[()].output  # reelgate --json ...
    credits = " ".join(screens[("credits",)].output.split())
    assert "your API key's and account's credits" in credits and "operators" in credits
