"""Tables on an 80-column terminal, through the real entry point against a real server: every task id and element
id whole on one line, statuses readable, nothing cut to ``x…``, no line wider than the terminal, and the balance
phrases of ``credits show`` never wrapped in the middle."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cli.conftest import user_runner
from client.live import LiveServer

Run = Callable[..., subprocess.CompletedProcess[str]]
NARROW = {"COLUMNS": "80"}


def _create(run: Run, front: Path, refer: Path | str, name: str) -> subprocess.CompletedProcess[str]:
    return run("element", "create", "--name", name, "--description", "a narrow terminal", "--front", str(front),
               "--refer", str(refer), "--tag", "character", "--wait")  # fmt: skip


def _fits(text: str) -> None:
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= 80, text


def test_lists_on_80_columns_show_ids_whole_and_statuses(server: LiveServer, pictures: tuple[Path, Path]) -> None:
    created = server.cli("keys", "create", "--account", "narrow", "--credits", "5")
    assert created.returncode == 0, created.stderr
    run = user_runner(server, created.stdout.strip())
    front, side = pictures
    missing = f"{server.base_url}/assets/{'0' * 64}.jpg"  # fetched, answers 404: the task fails
    with ThreadPoolExecutor(2) as pool:  # each is mostly interpreter start-up
        ok_run = pool.submit(_create, run, front, side, "A name of twenty ch")
        failed_run = pool.submit(_create, run, front, missing, "Broken")
        ok, failed = ok_run.result(), failed_run.result()
    assert ok.returncode == 0 and failed.returncode == 3, (ok.stderr, failed.stderr)
    tasks = json.loads(run("task", "list", "--json").stdout)["data"]
    assert sorted(t["status"] for t in tasks) == ["completed", "failed"]

    with ThreadPoolExecutor(5) as pool:  # independent reads: each is mostly interpreter start-up
        reads = [
            pool.submit(run, "task", "list", env=NARROW),
            pool.submit(run, "element", "list", env=NARROW),
            pool.submit(server.cli, "credits", "show", "--account", "narrow", extra_env=NARROW),
            pool.submit(server.cli, "credits", "show", "--account", "narrow"),  # 300 columns, as scripts read it
            pool.submit(server.cli, "keys", "list", "--account", "narrow", extra_env=NARROW),
        ]
        listed, elements, ledger, wide, keys = (read.result() for read in reads)

    assert listed.returncode == 0, listed.stderr
    _fits(listed.stdout)
    lines = listed.stdout.splitlines()
    for task in tasks:  # the id and its status on one line, whole
        assert any(task["id"] in line and f" {task['status']} " in line for line in lines), listed.stdout
    element_id = ok.stdout.strip()
    assert element_id in listed.stdout and "image_processing_" in listed.stdout  # outcomes: folded, never cut

    assert elements.returncode == 0, elements.stderr
    _fits(elements.stdout)
    row = next(line for line in elements.stdout.splitlines() if element_id in line)
    assert "A name of twenty ch" in row and "character" in row  # the name whole, tags by name

    assert ledger.returncode == 0, ledger.stderr
    _fits(ledger.stdout)
    assert "available 4, reserved 0, captured 1, tasks in flight 0" in ledger.stdout.splitlines()
    assert all(task["id"] in ledger.stdout for task in tasks) and "granted with key creation" in ledger.stdout

    # Wide, the ledger keeps its six columns, entry ids included (tests read balances and entries from it).
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in wide.stdout.splitlines()]
    grants = [row for row in rows if len(row) == 6 and row[2] == "grant"]
    assert grants and grants[0][0].isdigit() and grants[0][5] == "granted with key creation"

    assert keys.returncode == 0 and created.stdout.strip()[:10] in keys.stdout
    _fits(keys.stdout)
