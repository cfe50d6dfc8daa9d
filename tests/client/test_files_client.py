"""``client.files`` against a real ``reelgate serve``: upload a local file as a stream, by URL and as Base64, list,
delete, the quota, the errors as exceptions, and an element made from uploaded files (sync and async)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from client.live import LiveServer, create_keys, jpeg, png
from fakes.media_server import MediaServer
from reelgate_client import (
    AsyncReelgate,
    BadRequestError,
    File,
    MediaInputError,
    NotFoundError,
    Reelgate,
)


@pytest.fixture(scope="module")
def file_keys(server: LiveServer) -> dict[str, str]:
    """Accounts of their own, so the lists and quotas these tests read hold only their files."""
    return create_keys(server.env, {"files-sync": 10, "files-async": 10, "files-other": 0})


def test_upload_list_delete_and_quota(server: LiveServer, file_keys: dict[str, str], tmp_path: Path) -> None:
    photo = tmp_path / "holiday.png"
    photo.write_bytes(jpeg(301))  # a JPEG under a .png name: the server goes by the content
    with Reelgate(api_key=file_keys["files-sync"], base_url=server.base_url) as client, MediaServer() as media:
        media.serve("/cat.png", png(302), "image/png")
        streamed = client.files.upload(photo, upload_path="trips")
        assert isinstance(streamed, File) and (streamed.mime_type, streamed.original_name) == (
            "image/jpeg",
            "holiday.png",
        )
        assert streamed.size == len(jpeg(301)) and streamed.upload_path == "trips"
        assert httpx.get(streamed.url).content == photo.read_bytes()
        by_url = client.files.upload_url(media.url("/cat.png"), file_name="cat.png")
        inline = client.files.upload_base64(png(303))
        assert (by_url.file_name, by_url.mime_type, inline.mime_type) == ("cat.png", "image/png", "image/png")

        page = client.files.list(page_size=2)
        assert [f.id for f in page.files] == [inline.id, by_url.id] and page.total == 3 and page.has_more
        assert [f.id for f in client.files.list(page=2, page_size=2).files] == [streamed.id]
        quota = client.files.quota()
        assert (quota.used, quota.max, quota.remaining) == (3, 2000, 1997)

        assert client.files.delete(streamed.id) == streamed.id
        with pytest.raises(NotFoundError) as gone:
            client.files.delete(streamed.id)
        assert gone.value.code == "file_not_found"
        assert httpx.get(streamed.url).status_code == 404


def test_errors_are_exceptions_naming_the_rule(server: LiveServer, file_keys: dict[str, str], tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture at all\n" * 10)
    with Reelgate(api_key=file_keys["files-other"], base_url=server.base_url) as client:
        with pytest.raises(BadRequestError) as refused:
            client.files.upload(text)
        assert refused.value.code == "unsupported_file_type" and "got text" in str(refused.value)
        with pytest.raises(MediaInputError, match="no such file"):
            client.files.upload(tmp_path / "missing.jpg")
        assert client.files.quota().used == 0


async def test_async_upload_then_an_element_from_the_file_urls(server: LiveServer, file_keys: dict[str, str],
                                                               tmp_path: Path) -> None:  # fmt: skip
    front, side = tmp_path / "front.jpg", tmp_path / "side.jpg"
    front.write_bytes(jpeg(311))
    side.write_bytes(jpeg(312))
    async with AsyncReelgate(api_key=file_keys["files-async"], base_url=server.base_url) as client:
        a, b = await client.files.upload(front), await client.files.upload(side)
        task = await client.elements.create(name="Uploaded", description="from the file API", frontal=a.url,
                                            refer=[b.url])  # fmt: skip
        done = await client.tasks.wait(task, timeout=30)
        assert done.status == "completed" and done.result is not None
        assert [f.id for f in (await client.files.list()).files] == [b.id, a.id]
        assert await client.files.delete(a.id) == a.id
        assert (await client.files.quota()).used == 1
    with Reelgate(api_key=file_keys["files-other"], base_url=server.base_url) as other:
        assert other.files.list().files == []  # another account sees none of them
        with pytest.raises(NotFoundError):
            other.files.delete(b.id)
