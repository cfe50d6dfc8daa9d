"""A real S3-compatible server on loopback: moto's standalone server (``moto_server``) as a child process.

A separate process, so what it keeps (it holds objects in its own memory) never counts in the memory a test
measures, and its HTTP is a real socket away. Stopped by its own pid; any access key works.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from procs import free_port

ACCESS_KEY, SECRET_KEY, REGION = "reelgate-test", "reelgate-test-secret", "us-east-1"


class MotoS3:
    """``with MotoS3() as s3: s3.endpoint``; ``make_bucket`` creates a bucket over the S3 API itself."""

    def __init__(self, log: Path | None = None) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab") if log is not None else subprocess.DEVNULL
        moto = Path(sys.executable).parent / "moto_server"
        self._proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(self.port)], stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def __enter__(self) -> MotoS3:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.endpoint}/moto-api/", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("moto_server did not answer within 30 s")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        if not isinstance(self._log, int):
            self._log.close()

    def make_bucket(self, name: str) -> None:
        import boto3  # moto's own dependency; synchronous is simplest for a set-up step

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY)  # fmt: skip
        client.create_bucket(Bucket=name)
