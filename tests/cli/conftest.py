"""Fixtures for CLI tests: a real ``reelgate serve`` per session and the environment a user's shell would have."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from client.live import REELGATE, LiveServer, jpeg, kling_session_server, session_server

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    return session_server(request.config, tmp_path_factory)


@pytest.fixture(scope="session")
def keys(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return session_server(request.config, tmp_path_factory).keys


def user_runner(server: LiveServer, api_key: str) -> Run:
    """Run the real ``reelgate`` entry point as a user would, with REELGATE_API_KEY and REELGATE_BASE_URL set."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        user_env = {k: v for k, v in server.env.items() if not k.startswith("REELGATE_")}
        user_env.update({"REELGATE_API_KEY": api_key, "REELGATE_BASE_URL": server.base_url, "COLUMNS": "200"})
        user_env.update(env or {})
        return subprocess.run(
            [REELGATE, *args], env=user_env, capture_output=True, text=True, timeout=timeout, check=False
        )

    return run


@pytest.fixture
def reelgate(server: LiveServer, keys: dict[str, str]) -> Run:
    return user_runner(server, keys["cli"])


@pytest.fixture(scope="session")
def kling_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    return kling_session_server(request.config, tmp_path_factory)


@pytest.fixture
def kling_reelgate(kling_server: LiveServer) -> Run:
    """``reelgate`` as a user of the server whose Kling channel is the fake Kling server."""
    return user_runner(kling_server, kling_server.keys["video-cli"])


@pytest.fixture
def pictures(tmp_path: Path) -> tuple[Path, Path]:
    front, side = tmp_path / "front.jpg", tmp_path / "side.jpg"
    front.write_bytes(jpeg(301))
    side.write_bytes(jpeg(302))
    return front, side
