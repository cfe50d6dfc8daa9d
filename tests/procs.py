"""Real Reelgate processes for end-to-end tests: start ``reelgate`` commands on loopback, wait, kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent / "reelgate"


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open at once while choosing, so no two are the same)."""
    held = [socket.socket() for _ in range(count)]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for s in held:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def reelgate_env(data_dir: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    env.update(REELGATE_DATA_DIR=str(data_dir), REELGATE_DATABASE_URL=db_url, REELGATE_ALLOW_PRIVATE_NETWORKS="1",
               REELGATE_WORKER_POLL_INTERVAL="0.05", REELGATE_LOG_LEVEL="WARNING",
               # Tasks in the serving process (one process per server, as before worker processes): the suite is
               # CPU-bound and each process costs ~1 s of imports; tests/e2e/test_worker_processes.py runs the default.
               REELGATE_WORKER_PROCESSES="0")  # fmt: skip
    env.update(extra)
    return env


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def create_key(env: dict[str, str], account: str = "acme", credits: int = 100) -> str:
    return run(env, "keys", "create", "--account", account, "--credits", str(credits)).strip().splitlines()[-1]


class Proc:
    """One ``reelgate`` process; ``kill()`` is SIGKILL (nothing gets to clean up)."""

    def __init__(self, env: dict[str, str], *args: str, log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.popen = subprocess.Popen([str(BIN), *args], env=env, stdout=self._out, stderr=subprocess.STDOUT,
                                      start_new_session=True)  # fmt: skip

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        self._out.close()

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()


def serve(env: dict[str, str], port: int, log: Path, *extra: str) -> Proc:
    proc = Proc(env, "serve", "--port", str(port), *extra, log=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"reelgate serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"reelgate serve did not start: {log.read_text()[-2000:]}")
