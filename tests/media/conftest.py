"""Fixtures for media tests: a loopback media server per test, and videos encoded once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakes import mediagen
from fakes.media_server import MediaServer


@pytest.fixture
def server() -> Iterator[MediaServer]:
    with MediaServer() as media_server:
        yield media_server


@pytest.fixture(scope="session")
def landscape_mp4() -> bytes:
    return mediagen.mp4(1920, 1080, seconds=5.0, fps=4)


@pytest.fixture(scope="session")
def portrait_mov() -> bytes:
    return mediagen.mp4(1080, 1920, seconds=5.0, fps=4, container="mov")
