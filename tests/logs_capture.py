"""Render captured log records the way the JSON formatter would, extras included, for leak checks."""

from __future__ import annotations

import pytest

from reelgate.logs import JsonFormatter


def captured_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)
