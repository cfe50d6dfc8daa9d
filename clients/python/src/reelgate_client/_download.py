"""Save a task's result (a video of any size) to a file: streamed in bounded chunks, whole or not at all.

Each attempt writes to a fresh temporary file beside the destination and renames it into place only once the body
is complete, so the destination never holds half a video and a failed download leaves nothing behind. A dropped
connection or a retryable status restarts the download with the client's back-off, up to its ``max_retries``.
Redirects are followed: a result may be served from a storage bucket or CDN behind one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import httpx

from reelgate_client._base import AsyncAPIClient, BaseClient, SyncAPIClient
from reelgate_client._errors import ReelgateError
from reelgate_client._tasks import AsyncTasks, Tasks
from reelgate_client._types import Task
from reelgate_client._version import __version__

# A URL, a task id (task-unified-...), or a task: a task (or id) stands for its results[index].
Target = str | Task
CHUNK_BYTES = 256 * 1024  # what one read holds in memory, whatever the video's size
TASK_ID_PREFIX = "task-unified-"


def is_task_id(target: str) -> bool:
    return target.startswith(TASK_ID_PREFIX)


def result_url(task: Task, index: int) -> str:
    """The task's ``results[index]``, or an error saying why there is none."""
    if not task.results:
        state = f"{task.status} ({task.progress}%)" if not task.done else task.status
        raise ReelgateError(f"task {task.id} has no results to download (it is {state}; wait for it first)")
    if not -len(task.results) <= index < len(task.results):
        raise ReelgateError(f"task {task.id} has {len(task.results)} result(s); there is no results[{index}]")
    return task.results[index]


def absolute(url: str, client: BaseClient) -> str:
    """A server-relative URL (``/assets/...``) is on the client's server; any other must be http(s)."""
    if url.startswith("/"):
        return client.base_url + url
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"cannot download {url[:80]!r}: not an http(s) URL, a task id or a task")
    return url


def _request(client: BaseClient, http: httpx.Client | httpx.AsyncClient, url: str) -> httpx.Request:
    # No API key: a result URL is a capability of its own, and it may live on another host (a storage bucket).
    headers = {"User-Agent": f"reelgate-python/{__version__}"}
    return http.build_request("GET", url, headers=headers, timeout=client.timeout)


@contextlib.contextmanager
def part_file(path: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A new temporary file in ``path``'s folder (so the rename is atomic), removed unless it was renamed."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    part = Path(name)
    try:
        with os.fdopen(fd, "wb") as sink:
            yield sink, part
    finally:
        part.unlink(missing_ok=True)


def _destination(path: Path) -> Path:
    path = path.expanduser()
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give the file to write (for example {path / 'video.mp4'})")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class Downloader:
    """Blocking downloads over the client's own connection pool."""

    def __init__(self, client: SyncAPIClient, tasks: Tasks) -> None:
        self._client = client
        self._tasks = tasks

    def download(self, target: Target, path: Path, index: int) -> Path:
        if isinstance(target, Task):
            url = result_url(target, index)
        elif is_task_id(target):
            url = result_url(self._tasks.retrieve(target), index)
        else:
            url = target
        return self._fetch(absolute(url, self._client), _destination(path))

    def _fetch(self, url: str, path: Path) -> Path:
        http = self._client._http
        request = _request(self._client, http, url)
        attempt = 0
        while True:
            try:
                response = http.send(request, stream=True, follow_redirects=True)
                try:
                    if response.is_success:
                        return self._save(response, path)
                    response.read()  # the error body, for the exception's message
                finally:
                    response.close()
                delay = self._client._after_failure(request, attempt, response, None)
            except httpx.TransportError as exc:
                delay = self._client._after_failure(request, attempt, None, exc)
            time.sleep(delay)
            attempt += 1

    @staticmethod
    def _save(response: httpx.Response, path: Path) -> Path:
        with part_file(path) as (sink, part):
            for chunk in response.iter_bytes(CHUNK_BYTES):
                sink.write(chunk)
            _commit(sink, part, path)
        return path


class AsyncDownloader:
    """The async twin of Downloader; file writes run in a thread so the event loop never waits on the disk."""

    def __init__(self, client: AsyncAPIClient, tasks: AsyncTasks) -> None:
        self._client = client
        self._tasks = tasks

    async def download(self, target: Target, path: Path, index: int) -> Path:
        if isinstance(target, Task):
            url = result_url(target, index)
        elif is_task_id(target):
            url = result_url(await self._tasks.retrieve(target), index)
        else:
            url = target
        return await self._fetch(absolute(url, self._client), await asyncio.to_thread(_destination, path))

    async def _fetch(self, url: str, path: Path) -> Path:
        http = self._client._http
        request = _request(self._client, http, url)
        attempt = 0
        while True:
            try:
                response = await http.send(request, stream=True, follow_redirects=True)
                try:
                    if response.is_success:
                        return await self._save(response, path)
                    await response.aread()
                finally:
                    await response.aclose()
                delay = self._client._after_failure(request, attempt, response, None)
            except httpx.TransportError as exc:
                delay = self._client._after_failure(request, attempt, None, exc)
            await asyncio.sleep(delay)
            attempt += 1

    @staticmethod
    async def _save(response: httpx.Response, path: Path) -> Path:
        with part_file(path) as (sink, part):
            async for chunk in response.aiter_bytes(CHUNK_BYTES):
                await asyncio.to_thread(sink.write, chunk)
            await asyncio.to_thread(_commit, sink, part, path)
        return path


def _commit(sink: BinaryIO, part: Path, path: Path) -> None:
    sink.flush()
    os.fsync(sink.fileno())
    os.replace(part, path)
