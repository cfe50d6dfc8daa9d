"""``videos.download`` against real loopback HTTP servers: a real MP4 saved whole, in bounded memory, never half.

The result URLs a real server hands out are tested in test_videos.py; here a loopback host stands in for a storage
bucket, so dropped connections and big bodies can be scripted.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import av
import pytest

from client.live import STREAM_BLOCK, LiveServer, file_host, jpeg
from reelgate_client import (
    APIConnectionError,
    AsyncReelgate,
    NotFoundError,
    Reelgate,
    ReelgateError,
    Task,
)

BIG = 48 * 1024 * 1024


def _decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert stream.average_rate is not None
        return frames / float(stream.average_rate)


def _task(url: str) -> Task:
    return Task.from_dict({"id": "task-unified-1-abcdefgh", "status": "completed", "progress": 100, "results": [url]})


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_result_url_or_task_is_saved_whole_and_decodes(small_mp4: bytes, tmp_path: Path) -> None:
    with file_host({"/r/a.mp4": small_mp4}) as (host, url), Reelgate(api_key="k", base_url=url) as client:
        host.redirects["/signed"] = f"{url}/r/a.mp4"  # as a bucket's signed link may redirect
        saved = client.videos.download(f"{url}/signed", tmp_path / "from-url.mp4")
        again = client.videos.download(_task(f"{url}/r/a.mp4"), str(tmp_path / "nested" / "from-task.mp4"))
        relative = client.videos.download("/r/a.mp4", tmp_path / "relative.mp4")  # on the client's server
    assert saved == tmp_path / "from-url.mp4" and again == tmp_path / "nested" / "from-task.mp4"
    for path in (saved, again, relative):
        assert path.read_bytes() == small_mp4
    assert _decoded_seconds(saved) == pytest.approx(2.0, abs=0.11)
    assert _leftovers(tmp_path) == ["from-url.mp4", "nested", "relative.mp4"]  # no temporary file left


def test_memory_stays_bounded_whatever_the_size(tmp_path: Path) -> None:
    with file_host({}) as (_host, url), Reelgate(api_key="k", base_url=url) as client:
        tracemalloc.start()
        try:
            saved = client.videos.download(f"{url}/stream/{BIG}", tmp_path / "big.bin")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert saved.stat().st_size == BIG
    with saved.open("rb") as f:
        assert f.read(len(STREAM_BLOCK)) == STREAM_BLOCK
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a {BIG / 1e6:.0f} MB download"


def test_a_dropped_connection_restarts_and_the_file_is_never_half(small_mp4: bytes, tmp_path: Path) -> None:
    with file_host({"/a.mp4": small_mp4}) as (host, url):
        host.cut, host.cut_after = 1, len(small_mp4) // 2
        with Reelgate(api_key="k", base_url=url, max_retries=2) as client:
            saved = client.videos.download(f"{url}/a.mp4", tmp_path / "out.mp4")
        assert saved.read_bytes() == small_mp4 and host.served == ["/a.mp4", "/a.mp4"]

        (tmp_path / "kept.mp4").write_bytes(b"the previous video")
        host.cut = 1
        with (
            Reelgate(api_key="k", base_url=url, max_retries=0) as client,
            pytest.raises(APIConnectionError, match="failed during GET /a.mp4"),
        ):
            client.videos.download(f"{url}/a.mp4", tmp_path / "kept.mp4")
    assert (tmp_path / "kept.mp4").read_bytes() == b"the previous video"  # untouched by the failed download
    assert _leftovers(tmp_path) == ["kept.mp4", "out.mp4"]


def test_errors_name_what_is_wrong(tmp_path: Path, server: LiveServer, api_key: str) -> None:
    with file_host({}) as (_host, url), Reelgate(api_key="k", base_url=url) as client:
        with pytest.raises(NotFoundError) as missing:
            client.videos.download(f"{url}/gone.mp4", tmp_path / "gone.mp4")
        assert missing.value.status_code == 404
        with pytest.raises(ValueError, match="is a directory"):
            client.videos.download(f"{url}/a.mp4", tmp_path)
    assert _leftovers(tmp_path) == []
    # A task id is looked up on the real server: an element task has no results to download.
    with Reelgate(api_key=api_key, base_url=server.base_url) as client:
        element = client.elements.create(name="NoVideo", description="d", frontal=jpeg(60), refer=[jpeg(61)])
        with pytest.raises(ReelgateError, match=f"task {element.id} has no results to download"):
            client.videos.download(element.id, tmp_path / "none.mp4")
        with pytest.raises(NotFoundError):
            client.videos.download("task-unified-1700000000-zzzzzzzz", tmp_path / "none.mp4")


async def test_the_async_twin(small_mp4: bytes, tmp_path: Path) -> None:
    with file_host({"/a.mp4": small_mp4}) as (host, url):
        host.cut, host.cut_after = 1, 1000
        async with AsyncReelgate(api_key="k", base_url=url) as client:
            saved = await client.videos.download(_task(f"{url}/a.mp4"), tmp_path / "a.mp4")
            big = await client.videos.download(f"{url}/stream/{8 * 1024 * 1024}", tmp_path / "big.bin")
            with pytest.raises(NotFoundError):
                await client.videos.download(f"{url}/missing.mp4", tmp_path / "missing.mp4")
    assert saved.read_bytes() == small_mp4 and _decoded_seconds(saved) == pytest.approx(2.0, abs=0.11)
    assert big.stat().st_size == 8 * 1024 * 1024 and _leftovers(tmp_path) == ["a.mp4", "big.bin"]
