"""Structured logging: one JSON object per line (or readable text with the same fields), with the task id, the
account and other context on every line about a task, and one access line per HTTP request.

The lines answer an operator's questions: ``reelgate.access`` says who asked what (method, route template, status,
time, account id: never a key), ``task submitted`` / ``task finished`` / ``task cancelled`` say what happened to a
task (account, model, credits, status, error code and reason, from ``task_fields``). JSON lines are plain JSON:
uvicorn's ``color_message`` (the same message with ANSI colour codes) is left out, and no message keeps an
escape sequence.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
from typing import Any, TextIO

import orjson

from reelgate.domain import TaskRecord

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# uvicorn logs every start-up line twice over: the message, and "color_message" with terminal colour codes.
_DROPPED = _STANDARD | {"color_message"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ACCESS_LOGGER = "reelgate.access"


def _message(record: logging.LogRecord) -> str:
    text = record.getMessage()
    return _ANSI.sub("", text) if "\x1b" in text else text


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _DROPPED and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # one strftime per second, not per line (an access line per request adds up)
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self._stamp

    def render(self, created: float, level: str, logger: str, msg: str, fields: dict[str, Any]) -> str:
        """One line: the standard keys first, then ``fields``."""
        entry: dict[str, Any] = {"ts": round(created, 3), "time": self._time(created), "level": level,
                                 "logger": logger, "msg": msg}  # fmt: skip
        entry.update(fields)
        return orjson.dumps(entry, default=str).decode()

    def format(self, record: logging.LogRecord) -> str:
        fields = _extras(record)
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return self.render(record.created, record.levelname.lower(), record.name, _message(record), fields)


class JsonStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure`` installs for JSON lines; it also writes lines made without a LogRecord
    (``AccessLog``'s), in the same shape, under the same lock."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.json = JsonFormatter()
        self.setFormatter(self.json)

    def write_fields(self, logger: str, msg: str, fields: dict[str, Any]) -> None:
        """An INFO line of ``logger`` with ``fields``, written now (unless the handler's level is above INFO)."""
        if self.level > logging.INFO:
            return
        line = self.json.render(time.time(), "info", logger, msg, fields) + self.terminator
        with self.lock or contextlib.nullcontext():
            self.stream.write(line)
            self.stream.flush()  # as StreamHandler.emit does: a line is out when the call returns


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...``: the JSON line's fields, for a person reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        extras = _extras(record)
        if not extras:
            return line
        return line + " " + " ".join(f"{key}={_text(value)}" for key, value in extras.items())


def _text(value: object) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return orjson.dumps(text).decode() if not text or " " in text or '"' in text else text


def configure(level: str, as_json: bool, *, access: bool = True) -> None:
    handler: logging.Handler
    if as_json:
        handler = JsonStreamHandler(sys.stderr)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # ours (reelgate.access) says more, once
    # REELGATE_ACCESS_LOG=0 keeps the task lines but drops the per-request one, the costly one on a hot route.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if access else logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for chatty in ("httpx", "httpcore"):  # one line per outgoing request (every poll) is noise, not signal
        logging.getLogger(chatty).setLevel(logging.WARNING)


def task_fields(task: TaskRecord) -> dict[str, Any]:
    """What a line about a task's submit or end carries: whose it is, which model, what it holds or cost, and how
    it ended (the error code and the reason given to the tenant)."""
    fields: dict[str, Any] = {"task_id": task.id, "account_id": task.account_id, "model": task.model,
                              "status": task.status, "credits": task.price / 1000}  # fmt: skip
    if task.error_code:
        fields["code"] = task.error_code
        fields["reason"] = task.error_message
    return fields


class AccessLog:
    """One line per HTTP request on ``reelgate.access`` at INFO (a level above turns them off, at the cost of one
    level check per request).

    At thousands of requests a second logging's general path (a LogRecord of some twenty attributes, the walk up
    the logger tree, filters, a formatter reading every attribute back) cost more CPU than the task query it
    describes: measured in a serving process, 70-90 us a line against about 110 us for the whole request. So
    when the configuration is the one ``configure`` makes for JSON (one ``JsonStreamHandler`` on the root logger,
    no filter, no other handler on the way), the line is written straight through that handler, in the same
    shape as any other; any other configuration (text lines, a test's log capture, an added handler) gets an
    ordinary LogRecord.
    """

    def __init__(self) -> None:
        self._log = logging.getLogger(ACCESS_LOGGER)

    def enabled(self) -> bool:
        return self._log.isEnabledFor(logging.INFO)

    def request(self, method: str, route: str, path: str, status: int, seconds: float,
                account_id: int | None) -> None:  # fmt: skip
        ms = round(seconds * 1000, 2)
        fields = {"method": method, "route": route, "path": path, "status": status, "duration_ms": ms,
                  "account_id": account_id}  # fmt: skip
        direct = self._direct_handler()
        if direct is not None:
            direct.write_fields(ACCESS_LOGGER, f"{method} {route} {status} {ms:.2f} ms", fields)
            return
        record = self._log.makeRecord(ACCESS_LOGGER, logging.INFO, "", 0, "%s %s %d %.2f ms",
                                      (method, route, status, ms), None, extra=fields)  # fmt: skip
        self._log.handle(record)

    def _direct_handler(self) -> JsonStreamHandler | None:
        """The JSON handler when it is the only place the line would go, with nothing to filter it on the way."""
        root = logging.getLogger()
        handlers = root.handlers
        if len(handlers) != 1 or type(handlers[0]) is not JsonStreamHandler or handlers[0].filters or root.filters:
            return None
        logger: logging.Logger | None = self._log
        while logger is not None and logger is not root:
            if logger.handlers or logger.filters or not logger.propagate:
                return None
            logger = logger.parent
        return handlers[0]
