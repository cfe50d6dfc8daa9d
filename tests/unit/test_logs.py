"""Log lines: plain JSON (no colour codes, uvicorn's ``color_message`` left out), text lines with the same fields, the
task lines' fields, and one access line per request naming the route template and the account, never the key."""

from __future__ import annotations

import io
import json
import logging
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from harness import Api, auth, b64_jpeg, image_body, make_settings, open_api
from reelgate.domain import TaskRecord
from reelgate.logs import ACCESS_LOGGER, AccessLog, JsonFormatter, TextFormatter, configure, task_fields


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, None, None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_no_colour_codes() -> None:
    # What uvicorn logs at start: the message, and the same one coloured for a terminal.
    record = _record("Started server process [42]", color_message="Started server process [\x1b[36m42\x1b[0m]")
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["msg"] == "Started server process [42]" and "color_message" not in entry
    assert "\x1b" not in line and "\\u001b" not in line
    coloured = JsonFormatter().format(_record("\x1b[32mINFO\x1b[0m: ready", task_id="task-1"))
    assert json.loads(coloured)["msg"] == "INFO: ready" and json.loads(coloured)["task_id"] == "task-1"


def test_text_lines_carry_the_same_fields() -> None:
    line = TextFormatter().format(_record("task finished", task_id="task-1", code="x", reason="it broke", n=3))
    assert line.endswith(' uvicorn.error task finished task_id=task-1 code=x reason="it broke" n=3'), line
    assert "color_message" not in TextFormatter().format(_record("up", color_message="\x1b[1mup\x1b[0m"))


def _task(status: str, code: str | None = None, reason: str | None = None) -> TaskRecord:
    return TaskRecord(id="task-unified-1-abcdefgh", account_id=7, model="kling-custom-element", status=status,
                      progress=0, created=1, cancellable=True, estimated_time=30, price=1500, user_group="default",
                      billing_rule="per_call", charged=None, result=None, error_code=code, error_message=reason,
                      callback_url=None)  # fmt: skip


def test_task_lines_say_whose_which_model_and_why_it_failed() -> None:
    assert task_fields(_task("pending")) == {"task_id": "task-unified-1-abcdefgh", "account_id": 7,
                                             "model": "kling-custom-element", "status": "pending", "credits": 1.5}  # fmt: skip
    failed = task_fields(_task("failed", "generation_timeout", "The task did not finish within 900 s."))
    assert (failed["code"], failed["reason"]) == ("generation_timeout", "The task did not finish within 900 s.")


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """``configure`` as a process runs it (JSON lines on stderr), on a captured stderr; the test's own logging
    set-up is put back afterwards."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    quietened = {
        name: logging.getLogger(name).level
        for name in ("uvicorn.access", "alembic", "httpx", "httpcore", ACCESS_LOGGER)
    }
    configure("INFO", True)
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved
        for name, level in quietened.items():
            logging.getLogger(name).setLevel(level)


def test_access_lines_are_written_straight_through_the_json_handler(configured: io.StringIO) -> None:
    access = AccessLog()
    access.request("GET", "/v1/tasks/{task_id}", "/v1/tasks/task-1", 200, 0.00123, 7)
    direct = json.loads(configured.getvalue())
    assert {k: v for k, v in direct.items() if k not in ("ts", "time")} == {
        "level": "info", "logger": ACCESS_LOGGER, "msg": "GET /v1/tasks/{task_id} 200 1.23 ms", "method": "GET",
        "route": "/v1/tasks/{task_id}", "path": "/v1/tasks/task-1", "status": 200, "duration_ms": 1.23,
        "account_id": 7}  # fmt: skip
    # Another handler on the way (a capture, a file): the ordinary path, the same line, and the other handler too.
    seen: list[logging.LogRecord] = []
    extra = logging.Handler()
    extra.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger(ACCESS_LOGGER).addHandler(extra)
    try:
        access.request("GET", "/v1/tasks/{task_id}", "/v1/tasks/task-1", 200, 0.00123, 7)
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(extra)
    first, second = configured.getvalue().splitlines()
    assert json.loads(first).keys() == json.loads(second).keys() and len(seen) == 1
    assert {k: v for k, v in json.loads(second).items() if k not in ("ts", "time")} == {
        k: v for k, v in direct.items() if k not in ("ts", "time")}  # fmt: skip
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)
    try:
        assert not access.enabled()
    finally:
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET)


@pytest.fixture
async def api(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Api]:
    db = tmp_path / "reelgate.db"
    shutil.copy(sqlite_template, db)
    async with open_api(make_settings(tmp_path, f"sqlite:///{db}")) as opened:
        yield opened


def _access(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == ACCESS_LOGGER]


async def test_one_access_line_per_request_with_route_status_and_account(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    key = await api.key("acme", credits=5)
    account_id = await api.rt.store.accounts.account_id("acme")
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    task = (await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).json()
    answers = [
        await api.client.get(f"/v1/tasks/{task['id']}", headers=auth(key)),
        await api.client.get("/v1/tasks/task-unified-0000000000-nothere", headers=auth(key)),
        await api.client.get("/v1/tasks?limit=2", headers=auth(key)),
        await api.client.get(f"/v1/tasks/{task['id']}", headers=auth("rg_not_a_key_at_all")),
        await api.client.get("/v1/no-such-route"),
    ]
    assert [a.status_code for a in answers] == [200, 404, 200, 401, 404]
    lines = _access(caplog)
    assert [(e["method"], e["route"], e["status"], e["account_id"]) for e in lines] == [
        ("POST", "/v1/videos/generations", 200, account_id),
        ("GET", "/v1/tasks/{task_id}", 200, account_id),
        ("GET", "/v1/tasks/{task_id}", 404, account_id),
        ("GET", "/v1/tasks", 200, account_id),
        ("GET", "/v1/tasks/{task_id}", 401, None),
        ("GET", "-", 404, None),
    ]
    assert lines[1]["path"] == f"/v1/tasks/{task['id']}" and lines[1]["msg"].startswith("GET /v1/tasks/{task_id} 200")
    assert all(isinstance(e["duration_ms"], float) and 0 <= e["duration_ms"] < 5000 for e in lines)
    text = json.dumps(lines)
    assert key not in text and key[:12] not in text and "rg_not_a_key" not in text


async def test_a_level_above_info_turns_the_access_lines_off(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=ACCESS_LOGGER)
    assert (await api.client.get("/healthz")).status_code == 200
    assert _access(caplog) == []


def test_the_access_line_alone_can_be_turned_off(configured: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    """REELGATE_ACCESS_LOG=0: no line per request, while task lines (any other logger at INFO) stay."""
    monkeypatch.setattr(sys, "stderr", configured)  # the handler configure makes writes to sys.stderr as it is now
    configure("INFO", True, access=False)
    assert not AccessLog().enabled()
    logging.getLogger("reelgate.test_task_lines").info("task submitted")
    assert json.loads(configured.getvalue())["msg"] == "task submitted"
    configure("INFO", True)
    assert AccessLog().enabled()
