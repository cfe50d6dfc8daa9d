"""Fixtures for client tests: one real ``reelgate serve`` per session, and accounts made with ``reelgate keys create``."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.live import LiveServer, jpeg, kling_session_server, png, session_server
from fakes.mediagen import mp4


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    return session_server(request.config, tmp_path_factory)


@pytest.fixture(scope="session")
def keys(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Account name -> API key for every account in ACCOUNTS."""
    return session_server(request.config, tmp_path_factory).keys


@pytest.fixture(scope="session")
def api_key(keys: dict[str, str]) -> str:
    """The key of an account with plenty of credits, for tests that neither count credits nor list."""
    return keys["shared"]


@pytest.fixture(scope="session")
def kling_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    """The server whose Kling channel is the fake Kling server; its keys are by KLING_ACCOUNTS name."""
    return kling_session_server(request.config, tmp_path_factory)


@pytest.fixture(scope="session")
def small_mp4() -> bytes:
    """A real two-second 320x240 H.264 MP4 (PyAV), as a result video."""
    return mp4(320, 240, seconds=2.0, fps=10)


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Three distinct scenes written as files: a frontal JPEG and two refer images (JPEG and PNG)."""

    paths = (tmp_path / "front.jpg", tmp_path / "side.jpg", tmp_path / "back.png")
    paths[0].write_bytes(jpeg(1))
    paths[1].write_bytes(jpeg(2))
    paths[2].write_bytes(png(3))
    return paths
